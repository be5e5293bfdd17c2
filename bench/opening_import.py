"""Bulk import: N members with opening balances (two lots of points with their expiry, stored
value and bonus, growth, a tier with its validity, a birthday) in a CSV file, imported by one
`patron import` process: members/s, and the CPU per member of the client and of the serve tree
by role, which a loaded machine does not distort the way it does wall time."""

import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

from bench.harness import Harness
from bench.machine import CpuMeter
from bench.report import Chart, Result, common_rows
from bench.settings import Settings

__all__ = ["Imported", "import_file", "run", "write_members"]

CHUNK = 2_000
IN_FLIGHT = 4


def write_members(path: Path, members: int, seed: int) -> None:
    """Seeded rows: a third each of Basic, Silver and Gold (Gold with a validity end)."""
    pick = random.Random(seed)
    with path.open("w") as file:
        file.write("member_id,tier,tier_valid_until,points,stored_value,bonus_value,growth,channel,birthday\n")
        for n in range(members):
            tier = ("Basic", "Silver", "Gold")[n % 3]
            until = "2027-06-30" if tier == "Gold" else ""
            file.write(f"imp{n:09d},{tier},{until},{pick.randint(0, 5_000)}@2027-01-01;{pick.randint(0, 900)}"
                       f"@2028-01-01,{pick.randint(0, 20_000)},{pick.randint(0, 500)},{pick.randint(0, 20_000)},"
                       f"pos,{pick.randint(1, 12):02d}-{pick.randint(1, 28):02d}\n")


class Imported(NamedTuple):
    seconds: float
    client_cpu: float
    """CPU seconds of the `patron import` process."""
    summary: str
    """What it printed last."""
    exit_status: int


def import_file(source: Path, address: str) -> Imported:
    """`patron import SOURCE` in a process of its own, to its end."""
    started = time.monotonic()
    importer = subprocess.Popen([sys.executable, "-m", "cli.main", "import", str(source), "--address", address,
                                 "--chunk", str(CHUNK), "--in-flight", str(IN_FLIGHT)], stdout=subprocess.PIPE)
    _, status, usage = os.wait4(importer.pid, 0)
    seconds = time.monotonic() - started
    summary = importer.stdout.read().decode().strip() if importer.stdout else ""
    if importer.stdout:
        importer.stdout.close()
    return Imported(seconds, usage.ru_utime + usage.ru_stime, summary, os.waitstatus_to_exitcode(status))


def run(settings: Settings) -> Result:
    members = settings.pick(settings.members, 1_000_000, 20_000)
    with Harness(settings) as bench:
        server = bench.serve()
        client = server.client()
        source = bench.path("members.csv")
        write_members(source, members, settings.seed)
        print(f"import: {members:,} members in {source} ({source.stat().st_size:,} bytes)", file=sys.stderr, flush=True)
        load_before = os.getloadavg()
        meter = CpuMeter([server.pid]).start()
        seconds, client_cpu, summary, exit_status = import_file(source, server.address)
        cpu = meter.stop()
        bench.cpu_by_role = {**meter.by_role}
        load_after = os.getloadavg()
        common = bench.common(client, cpu, members, unit="members")
    per_member = {role: round(1e6 * s / members, 1) for role, s in {"client": client_cpu, **meter.by_role}.items()}
    total = round(1e6 * (cpu + client_cpu) / members, 1)
    fields = {"seconds": round(seconds, 3), "members_per_second": round(members / seconds, 1),
              "summary": summary, "exit_status": exit_status,
              "client_cpu_seconds": round(client_cpu, 3), "cpu_microseconds_per_member": per_member,
              "cpu_microseconds_per_member_total": total,
              "members_per_second_if_2_cores_were_ours": round(2e6 / total) if total else None,
              "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in load_after], **common}
    rows = [("import", f"{members:,} members in {seconds:.1f} s ({fields['members_per_second']:,.0f}/s), "
                       f"chunks of {CHUNK:,}, {IN_FLIGHT} in flight"),
            ("CPU per member", f"{total} µs: " + ", ".join(f"{role} {us}" for role, us in per_member.items())),
            ("2 idle cores", f"{fields['members_per_second_if_2_cores_were_ours']:,}/s at that CPU per member"),
            ("load average", f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (1 min)"),
            ("patron import", summary),
            *common_rows(common, "members")]
    parameters = settings.parameters(members=members, chunk=CHUNK, in_flight=IN_FLIGHT)
    chart = Chart(f"import: CPU µs per member ({members:,} members, {seconds:.0f} s)",
                  bars=list(per_member.items()), unit="µs per member")
    ok = fields["exit_status"] == 0 and f"{members:,} imported" in summary
    return Result("import", fields, parameters, rows, chart, ok=ok)
