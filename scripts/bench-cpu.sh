# Sourced by scripts/bench-binary and scripts/bench-http: the measured server's CPU time per
# request, which moves far less than req/s when other work shares the machine's cores.
#
# `server_cpu_ticks PID` prints utime+stime of the process (all its threads, live and exited:
# fields 14 and 15 of /proc/PID/stat, in clock ticks of `getconf CLK_TCK`, 10 ms here).
# `report_server_cpu BEFORE AFTER OUTPUT` divides the difference by the requests of Trent's
# line in `trent bench`'s output (not the baseline line). The span between the two readings
# also holds the bench's set-up (a CreateKey or two) and the baseline run, during which Trent
# idles (its background tasks wake a few times a second): a few ticks, under 1% of a 10 s run.
# Kernel work done for the server outside its own threads (the ext4 journal thread, block I/O
# completion) is not counted; the load generator's CPU is not either.

server_cpu_ticks() {
    # The command name (field 2) may hold spaces: read the fields after its closing ')'.
    local rest
    rest="$(sed 's/^.*) //' "/proc/$1/stat")"
    # shellcheck disable=SC2086
    set -- $rest
    # After ')': field 3 is $1, so utime (14) is ${12} and stime (15) is ${13}.
    echo $(( ${12} + ${13} ))
}

report_server_cpu() {
    local before="$1" after="$2" output="$3" hz requests
    hz="$(getconf CLK_TCK)"
    requests="$(grep -v '^baseline' "$output" | grep -o 'requests=[0-9]*' | tail -1 | cut -d= -f2)"
    if [ -n "$requests" ] && [ "$requests" -gt 0 ]; then
        awk -v t=$((after - before)) -v hz="$hz" -v n="$requests" \
            'BEGIN { printf "server CPU: %.2f us/request (%.2f s over %d requests)\n", t * 1e6 / hz / n, t / hz, n }'
    fi
}

# `report_audit_batches DIR`: events and batches in the trail's segments (digest lines are
# one per batch), i.e. how many requests shared one write.
report_audit_batches() {
    local dir="$1" batches events
    [ -d "$dir" ] || return 0
    batches="$(cat "$dir"/*.jsonl 2>/dev/null | grep -c '^{"trentDigest"' || true)"
    events="$(cat "$dir"/*.jsonl 2>/dev/null | grep -c '^{"eventVersion"' || true)"
    if [ "${batches:-0}" -gt 0 ]; then
        awk -v b="$batches" -v e="$events" \
            'BEGIN { printf "audit trail: %d events in %d batches (%.1f events/batch)\n", e, b, e / b }'
    fi
}
