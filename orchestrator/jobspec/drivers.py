"""Known task drivers' config keys, so that typos in `config { }` get a did-you-mean like Nomad's."""

from __future__ import annotations

# Top-level keys each built-in driver accepts (Nomad's driver docs); unknown drivers stay free-form.
DRIVER_CONFIG_KEYS: dict[str, frozenset[str]] = {
    "docker": frozenset(
        {
            "image",
            "image_pull_timeout",
            "args",
            "auth",
            "auth_soft_fail",
            "command",
            "cgroupns",
            "container_exists_attempts",
            "cpuset_cpus",
            "cpu_hard_limit",
            "cpu_cfs_period",
            "devices",
            "dns_search_domains",
            "dns_options",
            "dns_servers",
            "entrypoint",
            "extra_hosts",
            "force_pull",
            "group_add",
            "healthchecks",
            "hostname",
            "init",
            "interactive",
            "isolation",
            "ipc_mode",
            "ipv4_address",
            "ipv6_address",
            "advertise_ipv6_address",
            "labels",
            "load",
            "logging",
            "mac_address",
            "memory_hard_limit",
            "mount",
            "mounts",
            "network_aliases",
            "network_mode",
            "oom_score_adj",
            "pid_mode",
            "pids_limit",
            "platform",
            "port_map",
            "ports",
            "privileged",
            "readonly_rootfs",
            "runtime",
            "security_opt",
            "shm_size",
            "storage_opt",
            "sysctl",
            "tty",
            "ulimit",
            "uts_mode",
            "userns_mode",
            "volumes",
            "volume_driver",
            "work_dir",
            "cap_add",
            "cap_drop",
            "ssl",
            "cpu_cfs_quota",
        }
    ),
    "raw_exec": frozenset(
        {
            "command",
            "args",
            "cgroup_v1_override",
            "cgroup_v2_override",
            "oom_score_adj",
            "work_dir",
            "denied_envvars",
        }
    ),
    "exec": frozenset(
        {
            "command",
            "args",
            "pid_mode",
            "ipc_mode",
            "cap_add",
            "cap_drop",
            "work_dir",
            "oom_score_adj",
            "denied_envvars",
        }
    ),
    "java": frozenset(
        {
            "class",
            "class_path",
            "jar_path",
            "jvm_options",
            "args",
            "pid_mode",
            "ipc_mode",
            "cap_add",
            "cap_drop",
            "work_dir",
        }
    ),
    "qemu": frozenset(
        {
            "image_path",
            "accelerator",
            "args",
            "graceful_shutdown",
            "guest_agent",
            "port_map",
            "drive_interface",
            "emulator",
            "machine_type",
        }
    ),
}

# For each driver, groups of keys of which at least one must be present.
DRIVER_REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "docker": (("image",),),
    "raw_exec": (("command",),),
    "exec": (("command",),),
    "java": (("jar_path", "class"),),
    "qemu": (("image_path",),),
}
