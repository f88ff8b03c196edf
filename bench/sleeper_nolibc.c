/*  sleeper_nolibc.c -- bench/sleeper's exec mode without the C library:
    `sleeper_nolibc ITEM` sleeps the milliseconds ITEM starts with, writes
    ITEM and a newline, and exits. Nothing runs before it but the kernel's
    exec: a process start costs what the kernel costs.

    Why: glibc's start-up asks the CPU about its caches with CPUID, dozens of
    times; a hypervisor may trap every CPUID (6-7 us each on the VMs this was
    written on), which makes each glibc process start cost ~0.6 ms more than
    the exec itself. Workload #5 runs both sleepers, so that the table shows
    how much of the exec-mode makespan is the machine's process start and
    how much is the runner's.

    Static, -nostdlib, x86-64 Linux only (bench/run skips it elsewhere).
*/
#if !defined(__x86_64__) || !defined(__linux__)
#error "sleeper_nolibc: x86-64 Linux only"
#endif

#define S_SYS_WRITE 1
#define S_SYS_NANOSLEEP 35
#define S_SYS_EXIT 60
#define S_EINTR 4

static long s_syscall3(long n, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

struct s_timespec {
    long sec;
    long nsec;
};

__attribute__((noreturn, used)) void s_main(long *sp)
{
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    if (argc < 2)
        s_syscall3(S_SYS_EXIT, 2, 0, 0);
    const char *item = argv[1];
    long ms = 0;
    for (const char *p = item; *p >= '0' && *p <= '9'; p++)
        ms = ms * 10 + (*p - '0');
    struct s_timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (ms > 0 && s_syscall3(S_SYS_NANOSLEEP, (long)&ts, (long)&ts, 0) == -S_EINTR)
        ;
    long len = 0;
    while (item[len])
        len++;
    //  The item and its newline in one write: argv's terminating NUL is
    //  ours to overwrite.
    argv[1][len] = '\n';
    s_syscall3(S_SYS_WRITE, 1, (long)item, len + 1);
    for (;;)
        s_syscall3(S_SYS_EXIT, 0, 0, 0);
}

//  The kernel enters at _start with the stack holding argc, argv, envp.
__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "    mov %rsp, %rdi\n"
        "    and $-16, %rsp\n"
        "    call s_main\n");
