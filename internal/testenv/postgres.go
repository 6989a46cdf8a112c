package testenv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a private PostgreSQL cluster with pgvector, pageinspect and pg_stat_statements
// installed in template1, so every database created from it has them.
type Postgres struct {
	Dir  string // temporary directory holding data/, the socket and config
	Port int
	User string // superuser name

	bin  string
	cred *syscall.Credential
	uid  int
	gid  int

	mu   sync.Mutex
	proc *process
	dbs  atomic.Int64
}

// pgBinDir finds PostgreSQL's server binaries: $VECTORHEAL_PG_BIN, then the Debian layout.
func pgBinDir() (string, error) {
	dirs := []string{os.Getenv("VECTORHEAL_PG_BIN"), "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("PostgreSQL server binaries not found (looked in $VECTORHEAL_PG_BIN, /usr/lib/postgresql/*/bin, PATH)")
}

// StartPostgres runs initdb in a new temporary directory and starts the server on a free port.
// initdb and postgres refuse to run as root, so as root they run as the "postgres" user (or
// "nobody" when that does not exist).
func StartPostgres(ctx context.Context) (*Postgres, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vectorheal-pg-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	pg := &Postgres{Dir: dir, User: "postgres", bin: bin, uid: -1, gid: -1}
	if os.Getuid() == 0 {
		if err := pg.dropPrivileges(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := pg.initdb(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := pg.Start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := pg.prepareTemplate(ctx); err != nil {
		pg.Stop()
		return nil, err
	}
	return pg, nil
}

// OpenPostgres starts the cluster kept in dir, creating it there first when dir holds none
// (created is then true), for tools that keep a large data set between runs. extraConf is
// appended to postgresql.conf of a new cluster and overrides the settings above it; an existing
// cluster keeps the configuration it was created with. Stop keeps dir; nothing removes it.
func OpenPostgres(ctx context.Context, dir, extraConf string) (pg *Postgres, created bool, err error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, false, fmt.Errorf("cluster dir: %w", err)
	}
	pg = &Postgres{Dir: dir, User: "postgres", bin: bin, uid: -1, gid: -1}
	if os.Getuid() == 0 {
		if err := pg.dropPrivileges(); err != nil {
			return nil, false, err
		}
	}
	if _, err := os.Stat(filepath.Join(pg.DataDir(), "PG_VERSION")); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("cluster dir: %w", err)
		}
		if err := pg.initdb(ctx); err != nil {
			return nil, false, err
		}
		if err := pg.appendConf(extraConf); err != nil {
			return nil, false, err
		}
		created = true
	}
	if err := pg.Start(ctx); err != nil {
		return nil, false, err
	}
	if created {
		if err := pg.prepareTemplate(ctx); err != nil {
			pg.Stop()
			return nil, false, err
		}
	}
	return pg, created, nil
}

func (pg *Postgres) dropPrivileges() error {
	var u *user.User
	var err error
	for _, name := range []string{"postgres", "nobody"} {
		if u, err = user.Lookup(name); err == nil {
			break
		}
	}
	if u == nil {
		return fmt.Errorf("running as root and neither user postgres nor nobody exists to run initdb as")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	pg.uid, pg.gid = uid, gid
	pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	return os.Chown(pg.Dir, uid, gid)
}

func (pg *Postgres) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(pg.bin, name), args...)
	cmd.Dir = pg.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	return cmd
}

// DataDir is the cluster's data directory, for tests that edit its files while it is stopped.
func (pg *Postgres) DataDir() string { return filepath.Join(pg.Dir, "data") }

func (pg *Postgres) initdb(ctx context.Context) error {
	cmd := pg.command(ctx, "initdb", "-D", pg.DataDir(), "-U", pg.User, "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	conf := `
listen_addresses = '127.0.0.1'
unix_socket_directories = '` + pg.Dir + `'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_preload_libraries = 'pg_stat_statements'
max_connections = 200
shared_buffers = 128MB
maintenance_work_mem = 256MB
log_min_messages = warning
log_min_duration_statement = -1
`
	return pg.appendConf(conf)
}

// appendConf appends settings to postgresql.conf; later lines win over earlier ones.
func (pg *Postgres) appendConf(conf string) error {
	f, err := os.OpenFile(filepath.Join(pg.DataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open postgresql.conf: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + conf + "\n"); err != nil {
		return fmt.Errorf("write postgresql.conf: %w", err)
	}
	return nil
}

// Start starts the server (again, after Stop) and waits until it accepts connections.
func (pg *Postgres) Start(ctx context.Context) error {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.Port == 0 {
		port, err := FreePort()
		if err != nil {
			return err
		}
		pg.Port = port
	}
	// Not CommandContext: the server must outlive the context that started it.
	cmd := pg.command(context.Background(), "postgres", "-D", pg.DataDir(), "-p", strconv.Itoa(pg.Port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred, Setpgid: true}
	p, err := startProcess("postgres", cmd)
	if err != nil {
		return err
	}
	pg.proc = p
	deadline, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(deadline, pg.DSN("postgres"))
		if err == nil {
			conn.Close(deadline)
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("postgres exited at start:\n%s", tail(p.logs.String(), 30))
		case <-deadline.Done():
			p.stop()
			return fmt.Errorf("postgres did not accept connections: %w\n%s", err, tail(p.logs.String(), 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop shuts the server down (fast mode) and keeps the data directory.
func (pg *Postgres) Stop() {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.proc != nil {
		pg.proc.stop()
	}
}

// Destroy stops the server and removes its directory.
func (pg *Postgres) Destroy() {
	pg.Stop()
	os.RemoveAll(pg.Dir)
}

// Logs returns the server's output so far.
func (pg *Postgres) Logs() string {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if pg.proc == nil {
		return ""
	}
	return pg.proc.logs.String()
}

// DSN returns a connection string for database db as the superuser.
func (pg *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", pg.User, pg.Port, db)
}

func (pg *Postgres) prepareTemplate(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, pg.DSN("template1"))
	if err != nil {
		return fmt.Errorf("connect template1: %w", err)
	}
	defer conn.Close(ctx)
	for _, ext := range []string{"vector", "pageinspect", "pg_stat_statements"} {
		if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS "+ext); err != nil {
			return fmt.Errorf("create extension %s (is it installed? run scripts/install-deps.sh): %w", ext, err)
		}
	}
	return nil
}

// CreateDatabase creates a fresh database (with the extensions) for one test and returns its
// DSN; it is dropped when the test ends.
func (pg *Postgres) CreateDatabase(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), pg.dbs.Add(1))
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, pg.DSN("postgres"))
		if err != nil {
			return // the cluster may already be stopped
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return pg.DSN(name)
}

// Chown gives path to the user the server runs as, for files a test prepares for it.
func (pg *Postgres) Chown(path string) error {
	if pg.uid < 0 {
		return nil
	}
	return os.Chown(path, pg.uid, pg.gid)
}

// DSNFor returns the connection string, on pg, of the database dsn names: the same database on
// a standby of dsn's server, for instance.
func (pg *Postgres) DSNFor(t testing.TB, dsn string) string {
	t.Helper()
	c, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("parse %q: %v", dsn, err)
	}
	return pg.DSN(c.Database)
}

// Exec runs each statement on a connection to dsn, in order, and fails t on the first error,
// naming the statement.
func Exec(t testing.TB, dsn string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}
