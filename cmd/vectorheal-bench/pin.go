package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// With -pin the machine's CPUs stand for two hosts: the primary's, where the application's
// queries and the primary server run, and a second one, where the standby (or an exporter on
// a host of its own) runs. Without it, a standby and an analysis would take their CPU from the
// primary's queries on a small machine, which no deployment with a replica on another host
// sees. The pinning is done with taskset(1): PostgreSQL's postmaster is pinned with the
// processes it has started, and the backends it forks later inherit its CPUs.

// cpuHalves splits the CPUs this process may run on into the primary's host (the first half)
// and the second host (the rest), as taskset lists ("0", "2,3").
func cpuHalves() (primary, second string, err error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", "", fmt.Errorf("CPUs of this process: %w", err)
	}
	list, ok := statusField(status, "Cpus_allowed_list")
	if !ok {
		return "", "", errors.New("CPUs of this process: no Cpus_allowed_list in /proc/self/status")
	}
	cpus, err := parseCPUList(list)
	if err != nil {
		return "", "", err
	}
	if len(cpus) < 2 {
		return "", "", fmt.Errorf("-pin: needs at least 2 CPUs, this process may use %d (%s)", len(cpus), list)
	}
	half := len(cpus) / 2
	return joinCPUs(cpus[:half]), joinCPUs(cpus[half:]), nil
}

// parseCPUList parses a kernel CPU list such as "0-3,6".
func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(strings.TrimSpace(s), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("CPU list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("CPU list %q: %w", s, err)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

func joinCPUs(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// statusField returns the value of a "Name:\tvalue" line of a /proc status file.
func statusField(status []byte, name string) (string, bool) {
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(k) == name {
			return strings.TrimSpace(string(v)), true
		}
	}
	return "", false
}

// pinProcess pins every thread of process pid to the CPUs of list; threads it starts later
// inherit them.
func pinProcess(list string, pid int) error {
	out, err := exec.Command("taskset", "-a", "-p", "-c", list, strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -a -p -c %s %d: %w: %s", list, pid, err, bytes.TrimSpace(out))
	}
	return nil
}

// pinServer pins the PostgreSQL server of dataDir, its postmaster and every process it has
// started, to the CPUs of list, and returns how many processes were pinned and the CPUs the
// kernel then reports for the postmaster, read back as a check.
func pinServer(list, dataDir string) (n int, reported string, err error) {
	pidFile, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, "", fmt.Errorf("postmaster.pid: %w", err)
	}
	first, _, _ := bytes.Cut(pidFile, []byte("\n"))
	postmaster, err := strconv.Atoi(strings.TrimSpace(string(first)))
	if err != nil {
		return 0, "", fmt.Errorf("postmaster.pid: %w", err)
	}
	pids, err := descendants(postmaster)
	if err != nil {
		return 0, "", err
	}
	for _, pid := range append([]int{postmaster}, pids...) {
		if err := pinProcess(list, pid); err != nil {
			if _, gone := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); errors.Is(gone, fs.ErrNotExist) {
				continue // a backend that ended meanwhile
			}
			return n, "", err
		}
		n++
	}
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(postmaster), "status"))
	if err != nil {
		return n, "", fmt.Errorf("postmaster's CPUs: %w", err)
	}
	reported, _ = statusField(status, "Cpus_allowed_list")
	return n, reported, nil
}

// descendants returns the processes below pid, from the parent each one names in /proc.
func descendants(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile
		}
		// After the command name in parentheses (which may hold spaces): state, then ppid.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(fields[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, children[p]...)
		queue = append(queue, children[p]...)
	}
	return out, nil
}
