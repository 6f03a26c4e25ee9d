"""The jobs the scenarios run, as HCL text that the simulator and real agents parse alike."""

from __future__ import annotations

# Each task writes its pid where a human debugging a failed run can find it, then sleeps; the simulator's
# driver runs a service task until it is killed, a batch task for its `sim_run_for`.
SLEEPER = '''
    task "{task}" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sh"
        args    = ["-c", "echo $$ > \\"$NOMAD_TASK_DIR/pid\\"; exec sleep {seconds}"]
      }}
      meta {{
        sim_run_for = "{sim_run_for}"
      }}
      resources {{
        cpu    = 20
        memory = 16
      }}
    }}'''


def service(job_id: str, count: int, *, max_parallel: int = 1, restart_attempts: int = 2, version: str = "1",
            task: str = "app") -> str:
    """A service job: `count` sleepers, fast restarts (1 s) and reschedules, migrations and updates
    `max_parallel` at a time with a 1 s min_healthy_time so scenarios do not wait Nomad's default 10 s.
    `version` lands in the task's env, so changing it is a destructive update."""
    sleeper = SLEEPER.format(task=task, seconds=3600, sim_run_for="forever")
    env = f'''
      env {{
        APP_VERSION = "{version}"
      }}'''
    sleeper = sleeper.replace('      driver = "raw_exec"', '      driver = "raw_exec"' + env, 1)
    return f'''job "{job_id}" {{
  datacenters = ["dc1"]
  type        = "service"
  group "{task}" {{
    count = {count}
    restart {{
      attempts = {restart_attempts}
      interval = "10m"
      delay    = "1s"
      mode     = "fail"
    }}
    reschedule {{
      delay          = "1s"
      delay_function = "constant"
      unlimited      = true
    }}
    migrate {{
      max_parallel     = {max_parallel}
      min_healthy_time = "1s"
      healthy_deadline = "1m"
    }}
    update {{
      max_parallel      = {max_parallel}
      min_healthy_time  = "1s"
      healthy_deadline  = "1m"
      progress_deadline = "2m"
    }}{sleeper}
  }}
}}
'''


def docker_service(job_id: str, count: int, *, restart_attempts: int = 2) -> str:
    """The service job of `service` with its task in a container (seed 004's redis, as busybox's sleep: no
    registry is reachable here, the tests build yurt/busybox:1 locally)."""
    text = service(job_id, count, restart_attempts=restart_attempts)
    start = text.index('      driver = "raw_exec"')
    end = text.index("      meta {", start)  # the raw_exec env and config go; meta and resources stay
    container = '''      driver = "docker"
      config {
        image   = "yurt/busybox:1"
        command = "sleep"
        args    = ["3600"]
      }
'''
    return text[:start] + container + text[end:]


def batch(job_id: str, seconds: int, *, node: str | None = None) -> str:
    """A batch job of one task that runs `seconds` then exits 0, optionally pinned to the node named `node`."""
    pin = f'''
    constraint {{
      attribute = "${{node.unique.name}}"
      value     = "{node}"
    }}''' if node else ""
    sleeper = SLEEPER.format(task="work", seconds=seconds, sim_run_for=f"{seconds}s")
    return f'''job "{job_id}" {{
  datacenters = ["dc1"]
  type        = "batch"{pin}
  group "work" {{{sleeper}
  }}
}}
'''


def system(job_id: str) -> str:
    """A system job: one sleeper on every eligible client (a node agent, a log shipper...)."""
    sleeper = SLEEPER.format(task="agent", seconds=3600, sim_run_for="forever")
    return f'''job "{job_id}" {{
  datacenters = ["dc1"]
  type        = "system"
  group "agent" {{{sleeper}
  }}
}}
'''


def write_probe(job_id: str) -> str:
    """A job of count 0: registering it is one committed write and places nothing (LAB.md's failover probe)."""
    return f'''job "{job_id}" {{
  datacenters = ["dc1"]
  group "probe" {{
    count = 0
    task "noop" {{
      driver = "raw_exec"
      config {{
        command = "/bin/true"
      }}
    }}
  }}
}}
'''
