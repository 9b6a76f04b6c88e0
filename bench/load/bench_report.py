"""Helpers the load scripts' report writers share (compare.sh and h2.sh import it with
PYTHONPATH=bench/load): reading the raw TSV's numbers, medians and the number format of the
tables, and the thresholds behind the CPU-share marks. Pure functions; no I/O."""
import math
import statistics

CLIENT_BOUND = 90.0  # server CPU % under which a pinned run is called client-bound (‡)
OTHER_LOAD = 10.0    # % of the server's CPU used by others above which a pinned run is noisy (§)


def num(x):
    """x as a float; NaN for anything that is not a number ("NaN", "", None)."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def med(v):
    """The median of v; NaN when v is empty."""
    return statistics.median(v) if v else math.nan


def fmt(x, digits=3):
    """A table figure: thousands separated from 100 up, else `digits` significant digits."""
    if x is None or math.isnan(x):
        return "NaN"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def rng(v):
    """ " (min–max)" of v when it has more than one value, else ""."""
    return f" ({fmt(min(v))}–{fmt(max(v))})" if len(v) > 1 else ""


def reproduce_lines(env, why):
    """The "Reproduce" block (env["command"], the commit, the wall time) and, when `why` (server
    -> reason) is not empty, the servers that could not be measured."""
    el = int(env["elapsed"])
    L = ["Reproduce (from the repository root, release build):", "", "    " + env["command"], "",
         f"tlsfront commit `{env['tlsfront']}`; wall time {el // 60} min {el % 60} s.", ""]
    if why:
        L += ["**Servers that could not be measured:**", ""]
        L += [f"- {s}: {w}" for s, w in why.items()]
        L.append("")
    return L


def machine_lines(env):
    """The "Date" and "Machine" items of the Set-up list (bench_env_versions' keys)."""
    return [f"- Date: {env['date']}",
            f"- Machine: {env['nproc']} cores, {env['cpu']}, {env['memory']} memory, {env['kernel']}; "
            f"{env['sysctl']}; {env['busy_before']} % busy over the second before the run started"]


def tail_lines(errf, confs):
    """The "Server error logs" section (errf: bench_errlogs' output) and the "Configurations"
    section (confs: (name, path) pairs; a file that cannot be read is left out)."""
    errtxt = open(errf).read().strip()
    L = ["## Server error logs", ""]
    if errtxt:
        L += ["First lines of each non-empty log:", "", "```", errtxt, "```"]
    else:
        L.append("All empty (level warn or error).")
    L += ["", "## Configurations", "", "As written for this run (paths are the run's temp dir).", ""]
    for name, path in confs:
        try:
            text = open(path).read().rstrip()
        except OSError:
            continue
        L += [f"<details><summary>{name}</summary>", "", "```", text, "```", "", "</details>", ""]
    return L


def write_plot_dat(path, cells, servers, S, key="per_server_cpu_s"):
    """bench_plot's input: a header "cell<TAB>server...", then S[(cell, server)][key] per cell
    (NaN where missing or not positive: nothing to draw on a log scale)."""
    with open(path, "w") as o:
        o.write("cell\t" + "\t".join(servers) + "\n")
        for c in cells:
            v = [S[(c, s)][key] for s in servers]
            o.write(c + "\t" + "\t".join("NaN" if math.isnan(x) or x <= 0 else f"{x:.6g}" for x in v) + "\n")


def print_summary(cells, servers, S, ratios, width=16):
    """The short stdout table: per server CPU-second and CPU % of each server, and the ratio
    (ratios: cell -> tlsfront ÷ best peer)."""
    print(f"{'cell':<{width}}" + "".join(f"{s + ' /CPU-s':>17}{'cpu%':>6}" for s in servers) + f"{'ratio':>8}")
    for c in cells:
        print(f"{c:<{width}}" + "".join(f"{fmt(S[(c, s)]['per_server_cpu_s']):>17}"
                                        f"{fmt(S[(c, s)]['server_cpu_pct']):>6}" for s in servers)
              + f"{fmt(ratios[c]):>8}")


def checks_lines(negf, intro, columns):
    """The table of what each server negotiated before the run: `intro`, then one row per line of
    negf (tab-separated: server, then one field per column; the last column, the CPUs of the
    server's threads, reads "–" when empty). Nothing when negf is empty."""
    neg = [l.rstrip("\n").split("\t") for l in open(negf)]
    if not neg:
        return []
    n = len(columns) + 1
    L = [intro, "", "| server | " + " | ".join(columns) + " |", "|---" * n + "|"]
    for r in neg:
        r += [""] * (n - len(r))
        L.append("| " + " | ".join(r[:n - 1] + [r[n - 1] or "–"]) + " |")
    return L + [""]


def cells_lines(cells, suffix=lambda c: ""):
    """The "Cells:" list: `name`: description (+ suffix(name)) for each (name, description)."""
    return ["Cells:", ""] + [f"- `{c}`: {d}{suffix(c)}" for c, d in cells] + [""]
