/* The security probe matrix of security-notes.md §1.9, run inside a container.
   Each probe runs in a forked child (a successful unshare must not taint the next one)
   and prints "<probe> OK" or "<probe> <errno name>". Built with gcc -static at test time.
   Never run it on the host: as host root its mount and unshare probes would succeed. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *name_of(int e) {
    switch (e) {
    case 0: return "OK";
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case ENOKEY: return "ENOKEY";
    case EBADF: return "EBADF";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    default: return "EOTHER";
    }
}

/* A syscall through the i386 ABI (seccomp sees AUDIT_ARCH_I386), as 32-bit programs make. */
static long int80(long nr, long a, long b, long c) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    if (ret < 0 && ret > -4096) { errno = (int)-ret; return -1; }
    return ret;
}

static long do_probe(const char *what) {
    if (!strcmp(what, "i386_getpid")) return int80(20, 0, 0, 0) < 0 ? -1 : 0;
    if (!strcmp(what, "i386_keyctl")) return int80(288, 0, -3, 0) < 0 ? -1 : 0;
    if (!strcmp(what, "i386_unshare")) return int80(310, CLONE_NEWUSER, 0, 0) < 0 ? -1 : 0;
    if (!strcmp(what, "unshare_user")) return unshare(CLONE_NEWUSER);
    if (!strcmp(what, "clone_user")) {
        long r = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0);
        if (r == 0) _exit(0);
        if (r > 0) waitpid((pid_t)r, NULL, 0);
        return r < 0 ? -1 : 0;
    }
    if (!strcmp(what, "clone3")) {
        uint64_t args[11] = {0};
        args[4] = SIGCHLD; /* exit_signal */
        long r = syscall(435, args, sizeof(args));
        if (r == 0) _exit(0);
        if (r > 0) waitpid((pid_t)r, NULL, 0);
        return r < 0 ? -1 : 0;
    }
    if (!strcmp(what, "keyctl")) return syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3, 0);
    if (!strcmp(what, "personality_rie")) return personality(READ_IMPLIES_EXEC) < 0 ? -1 : 0;
    if (!strcmp(what, "mount_tmpfs")) return mount("tmpfs", "/tmp", "tmpfs", 0, NULL);
    if (!strcmp(what, "fchmodat2")) return syscall(452, AT_FDCWD, "/nonexistent-probe", 0755, 0);
    if (!strcmp(what, "syscall_1000")) return syscall(1000);
    if (!strcmp(what, "getpid")) return syscall(SYS_getpid) < 0 ? -1 : 0;
    if (!strcmp(what, "add_key")) return syscall(SYS_add_key, "user", "probe", "x", 1, -3);
    if (!strcmp(what, "bpf")) return syscall(SYS_bpf, 0, NULL, 0);
    if (!strcmp(what, "userfaultfd")) return syscall(SYS_userfaultfd, 0);
    if (!strcmp(what, "io_uring_setup")) return syscall(425, 1, NULL);
    if (!strcmp(what, "socket_vsock")) return socket(40, SOCK_STREAM, 0) < 0 ? -1 : 0;
    if (!strcmp(what, "setns")) return setns(-1, 0);
    if (!strcmp(what, "perf_event_open")) return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
    if (!strcmp(what, "open_by_handle_at")) return syscall(SYS_open_by_handle_at, -1, NULL, 0);
    if (!strcmp(what, "kexec_load")) return syscall(SYS_kexec_load, 0, 0, NULL, 0);
    if (!strcmp(what, "chroot")) return chroot("/");
    errno = EINVAL;
    return -1;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "euid")) { /* as a setuid binary */
        printf("euid=%d uid=%d\n", (int)geteuid(), (int)getuid());
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            errno = 0;
            long r = do_probe(argv[i]);
            printf("%s %s\n", argv[i], name_of(r < 0 ? errno : 0));
            fflush(stdout);
            _exit(0);
        }
        waitpid(pid, NULL, 0);
    }
    return 0;
}
