/*
 * herd-vmm: one process per guest. Parses the configuration, builds the VM
 * and runs it; the exit status says how the guest ended (see --help).
 */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <string.h>

#include "herd/control.h"
#include "herd/jail.h"
#include "herd/log.h"
#include "herd/vcpu.h"
#include "herd/vm.h"
#include "herd/vmm_config.h"

int main(int argc, char **argv)
{
    struct herd_err err = {0};
    struct control_server *control = NULL;
    struct vmm_config cfg;
    struct vm vm;
    int status;

    log_set_prefix("herd-vmm");
    vmm_config_init(&cfg);
    if (vmm_config_parse_args(&cfg, argc, argv, &err)) {
        log_error("%s", err.msg);
        vmm_config_free(&cfg);
        return VMM_EXIT_ERROR;
    }
    if (cfg.show_help) {
        vmm_config_usage(stdout);
        vmm_config_free(&cfg);
        return 0;
    }
    if (cfg.show_version) {
        printf("herd-vmm %s\n", HERD_VERSION);
        vmm_config_free(&cfg);
        return 0;
    }
    log_set_level(cfg.log_level);
    if (vmm_config_validate(&cfg, &err)) {
        log_error("%s", err.msg);
        vmm_config_free(&cfg);
        return VMM_EXIT_ERROR;
    }
    /* A write past RLIMIT_FSIZE (--file-size-max, or one inherited) fails
     * with EFBIG instead of killing herd-vmm with SIGXFSZ: a guest that
     * fills its console or disk gets refused writes, not a dead VMM. Set
     * before anything is opened; seccomp later forbids changing either. */
    signal(SIGXFSZ, SIG_IGN);
    if (cfg.file_size_max) {
        struct rlimit rl = {.rlim_cur = cfg.file_size_max, .rlim_max = cfg.file_size_max};
        if (setrlimit(RLIMIT_FSIZE, &rl) < 0) {
            log_error("file-size-max: setrlimit: %s", strerror(errno));
            vmm_config_free(&cfg);
            return VMM_EXIT_ERROR;
        }
    }
    /* The cgroup before anything is allocated, so guest RAM is charged to
     * it; every privileged open (control socket, /dev/kvm, images, taps)
     * before the drop (docs/security.md). */
    if (cfg.cgroup && jail_join_cgroup(cfg.cgroup, &err)) {
        log_error("%s", err.msg);
        vmm_config_free(&cfg);
        return VMM_EXIT_ERROR;
    }
    /* The control socket first: a live one means this guest already runs,
     * and it must exist before privileges are dropped. */
    if (cfg.control)
        signal(SIGHUP, SIG_IGN); /* supervised: no terminal whose hangup matters */
    if (cfg.control && control_server_open(cfg.control, &control, &err)) {
        log_error("%s", err.msg);
        vmm_config_free(&cfg);
        return VMM_EXIT_ERROR;
    }
    struct jail_opts jail = {.cgroup = cfg.cgroup, .uid = cfg.uid, .gid = cfg.gid,
                             .seccomp = cfg.seccomp != 0};

    if (vm_create(&vm, &cfg, &err) || jail_prepare(&jail, &err) ||
        jail_drop(&jail, &err) ||
        (control && control_server_start(control, &control_vm_ops, &vm, &err))) {
        log_error("%s", err.msg);
        control_server_close(control);
        vm_destroy(&vm);
        vmm_config_free(&cfg);
        return VMM_EXIT_ERROR;
    }
    status = vm_run(&vm);
    /* Before vm_destroy: the control thread looks at the VM. */
    control_server_close(control);
    vm_destroy(&vm);
    vmm_config_free(&cfg);
    return status;
}
