# scripts/deps.sh -- sourced by scripts/demo, scripts/test and bench/run:
# installs the Debian packages taskfarm needs when they are missing.
#   tf_install_deps PKG...   (root: apt-get; otherwise print the line, fail)

# g++: brings the libstdc++.a of the release's gcc, for libzmq linked into
# the program (CMakeLists.txt, TF_STATIC_ZMQ); without it the program links
# libzmq.so.
TF_BUILD_PKGS="cmake gcc g++ make pkg-config libzmq3-dev libczmq-dev libcjson-dev"

tf_install_deps() {
    local missing=()
    local p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "taskfarm: missing packages: ${missing[*]}" >&2
        echo "install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
    echo "taskfarm: installing ${missing[*]}" >&2
    if [ -z "${TF_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        export TF_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
