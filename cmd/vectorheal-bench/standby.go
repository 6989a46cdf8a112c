package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/standby"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// replayLimit bounds the waits for the standby to replay the primary's position: the data
// set's copy streams with the base backup, and the query load writes no WAL, so it is
// replayed at once unless something is wrong.
const replayLimit = 5 * time.Minute

// startStandby makes a streaming replica of the private cluster as an operator makes one
// (pg_basebackup -R, testenv.StartStandby), waits until it has replayed the primary's
// position, and runs one structure scan on it: that reads the index into its buffer cache, as
// replay and earlier scans would have on a standby in service, and shows what a scan there
// takes.
func (b *bench) startStandby(ctx context.Context) error {
	start := time.Now()
	sb, err := testenv.StartStandby(ctx, b.pg, "")
	if err != nil {
		return fmt.Errorf("start the standby: %w", err)
	}
	b.standby, b.standbyDSN = sb, sb.DSN(benchDB)
	pool, err := pgxpool.New(ctx, b.standbyDSN)
	if err != nil {
		return fmt.Errorf("connect the standby: %w", err)
	}
	defer pool.Close()
	if err := standby.AwaitPrimary(ctx, b.pool, pool, replayLimit, 100*time.Millisecond); err != nil {
		return err
	}
	b.printf("standby: a streaming replica made with pg_basebackup -R, port %d, replayed the primary's position %.1f s after the start\n",
		sb.Port, time.Since(start).Seconds())
	start = time.Now()
	if err := b.standbyScan(ctx, pool); err != nil {
		return err
	}
	b.printf("one structure scan reading the index on the standby, its buffer cache cold: %.2f s\n", time.Since(start).Seconds())
	return nil
}

// standbyScan runs the exporter's own structure scan with the index read on the standby
// (exporter.ReadIndexesOnStandby), as a target with a standby DSN does, without a page budget:
// a page read there costs the primary nothing. It fails when the exporter read on the
// primary instead, which would measure the wrong thing.
func (b *bench) standbyScan(ctx context.Context, sb *pgxpool.Pool) error {
	rep, err := b.exporterScan(ctx, config.StructureCheck{}, exporter.ReadIndexesOnStandby(sb, replayLimit))
	if err != nil {
		return err
	}
	if rep.IndexReadsOn != "standby" {
		return fmt.Errorf("the exporter read the index on the %s, not the standby: %s", rep.IndexReadsOn, rep.IndexReadsReason)
	}
	return nil
}

// pinCPUs pins, for -pin, the primary server and this process's query clients to the first
// half of the CPUs, and the standby to the second half, where the analysing processes are
// started (b.pinned).
func (b *bench) pinCPUs() error {
	first, second, err := cpuHalves()
	if err != nil {
		return err
	}
	if err := pinProcess(first, os.Getpid()); err != nil {
		return fmt.Errorf("pin the query clients: %w", err)
	}
	n, got, err := pinServer(first, b.pg.DataDir())
	if err != nil {
		return fmt.Errorf("pin the primary: %w", err)
	}
	b.printf("CPUs pinned, a model of separate hosts: the primary server (%d processes; its postmaster now on CPUs %s) and the query clients on CPUs %s; ",
		n, got, first)
	if b.standby != nil {
		n, got, err := pinServer(second, b.standby.DataDir())
		if err != nil {
			return fmt.Errorf("pin the standby: %w", err)
		}
		b.printf("the standby (%d processes; its postmaster now on CPUs %s) and ", n, got)
	}
	b.printf("the analysing process on CPUs %s\n", second)
	b.pinned = second
	return nil
}
