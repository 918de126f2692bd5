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
    default: return "EOTHER";
    }
}

static long do_probe(const char *what) {
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
