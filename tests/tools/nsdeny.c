/* nsdeny.c: runs a command as a default Docker container would run it, as far as the
 * process runner can tell: the seccomp rules of Docker's default profile for a container
 * without CAP_SYS_ADMIN (no new namespaces through unshare or clone, no setns, mount,
 * bpf, keyctl...; clone3 answers ENOSYS), and without CAP_SYS_ADMIN after the exec (root
 * drops it from the bounding set; another user sets no_new_privs, as the filter needs).
 * Docker (runc) loads its filter while it still holds CAP_SYS_ADMIN and sets no
 * no_new_privs; so does this as root with CAP_SYS_ADMIN. Where root has none (inside a
 * container already), the kernel loads a filter only under no_new_privs: then it is set, as
 * for another user, and inherited (a run with no_new_privs = false keeps Landlock and
 * seccomp there, where a real container loses both).
 *   nsdeny [--no-pidfd] CMD ARGS...
 * --no-pidfd also refuses pidfd_open, as profiles older than Docker 20.10 did (the runner
 * then spawns with uv_spawn).
 * For the tests of the runner's degraded report (tests/e2e/container_test.lua). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

static const char *const nd_denied[] = {
    "unshare", "setns", "mount", "umount2", "pivot_root", "bpf", "perf_event_open", "keyctl",
    "add_key", "request_key", "syslog", "quotactl", "name_to_handle_at", "lookup_dcookie",
    "fanotify_init", "sethostname", "setdomainname", "fsopen", "fsmount", "move_mount",
    "open_tree", "fspick", NULL,
};

int main(int argc, char **argv) {
  int no_pidfd = argc > 1 && strcmp(argv[1], "--no-pidfd") == 0;
  if (no_pidfd) {
    argv++;
    argc--;
  }
  if (argc < 2) {
    fputs("usage: nsdeny [--no-pidfd] CMD ARGS...\n", stderr);
    return 2;
  }
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
  memset(caps, 0, sizeof caps);
  if (syscall(SYS_capget, &h, caps) != 0) {
    perror("nsdeny: capget");
    return 2;
  }
  int sys_admin = (caps[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective & CAP_TO_MASK(CAP_SYS_ADMIN)) != 0;
  /* root: out of the bounding set, so exec leaves it behind (already gone: nothing to drop) */
  if (geteuid() == 0 && prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) == 1 &&
      prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0) {
    perror("nsdeny: PR_CAPBSET_DROP");
    return 2;
  }
  /* another user, or root without CAP_SYS_ADMIN: the filter needs no_new_privs */
  if ((geteuid() != 0 || !sys_admin) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    perror("nsdeny: PR_SET_NO_NEW_PRIVS");
    return 2;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL) return 2;
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  for (const char *const *n = nd_denied; *n && rc == 0; n++) {
    int nr = seccomp_syscall_resolve_name(*n);
    if (nr != __NR_SCMP_ERROR) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
  }
  /* Docker's profile: clone with any namespace flag is refused without CAP_SYS_ADMIN. */
  static const unsigned long ns[] = {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                                     CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};
  for (size_t i = 0; i < sizeof ns / sizeof *ns && rc == 0; i++)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, ns[i], ns[i]));
  if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  if (rc == 0 && no_pidfd) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(pidfd_open), 0);
  if (rc == 0) rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc != 0) {
    fprintf(stderr, "nsdeny: seccomp: %s\n", strerror(-rc));
    return 2;
  }
  execvp(argv[1], argv + 1);
  fprintf(stderr, "nsdeny: %s: %s\n", argv[1], strerror(errno));
  return 127;
}
