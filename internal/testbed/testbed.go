// Package testbed starts real components — a ClickHouse server, Kafka (kfake
// or Apache Kafka in KRaft mode) and Alertmanager — on free loopback ports
// with temporary data directories, for integration tests, benchmarks and the
// demo. Every component is stopped by the test's cleanup (or by the stop
// function the non-test constructors return).
//
// Components that need something installed (the ClickHouse server, the Kafka
// jars, the Alertmanager binary) fail with a message that says to run
// scripts/install-deps.sh; they never skip a test.
//
// Environment overrides, to use components a developer already runs:
//
//	MCPWATCH_TEST_CLICKHOUSE=host:port   a ClickHouse native endpoint
//	MCPWATCH_TEST_KAFKA=host:port,...    Kafka seed brokers used by ApacheKafka (kfake always runs in-process)
//	MCPWATCH_CACHE=dir                   where install-deps.sh put things (default ~/.cache/mcpwatch)
package testbed

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// installHint is appended to every "missing dependency" error.
const installHint = "run scripts/install-deps.sh (as root) first"

// CacheDir is where scripts/install-deps.sh installs the Kafka jars, the
// Alertmanager binary and other tools: $MCPWATCH_CACHE, else
// ~/.cache/mcpwatch.
func CacheDir() string {
	if d := os.Getenv("MCPWATCH_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return filepath.Join(os.TempDir(), "mcpwatch-cache")
	}
	return filepath.Join(home, ".cache", "mcpwatch")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("cannot find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePorts returns n distinct free ports; the listeners are held until all
// are chosen so the same port is not returned twice.
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("cannot find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// proc is a child process that dies with the test binary: it is started on a
// locked OS thread with Pdeathsig, so even a test binary killed by a timeout
// leaves no server behind.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, valid after done is closed
	once sync.Once
}

// startProc starts cmd (stdout and stderr to logPath) on a dedicated locked
// thread with SIGKILL as its parent-death signal.
func startProc(cmd *exec.Cmd, logPath string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open log %s: %w", logPath, err)
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the *thread* that forked exits; keep this
		// thread for as long as the child lives.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			logf.Close()
			started <- err
			runtime.UnlockOSThread()
			return
		}
		started <- nil
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
		runtime.UnlockOSThread()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", cmd.Path, err)
	}
	return p, nil
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs
// it and waits for it to exit.
func (p *proc) stop(grace time.Duration) {
	p.once.Do(func() {
		if p.exited() {
			return
		}
		pid := p.cmd.Process.Pid
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-p.done
		}
	})
	<-p.done
}

// kill sends SIGKILL (for crash tests) and waits.
func (p *proc) kill() {
	p.once.Do(func() {
		if !p.exited() {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	<-p.done
}

// tail returns the last n bytes of a log file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := st.Size() - n
	if off < 0 {
		off = 0
	}
	b := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(b, off)
	return string(b)
}

// waitFor polls fn until it returns nil, the process exits or the timeout
// passes.
func waitFor(timeout time.Duration, p *proc, fn func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			return fmt.Errorf("process exited early (%v); last check: %w", p.err, last)
		}
		if last = fn(); last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.Join(fmt.Errorf("timed out after %s", timeout), last)
}

// sharedDirPrefix names the temp dirs of servers shared by a test binary;
// leftovers of killed test binaries are removed by sweepStale.
const sharedDirPrefix = "mcpwatch-testbed-"

// sweepStale removes shared temp dirs whose owning process is gone.
func sweepStale() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), sharedDirPrefix+"*"))
	for _, dir := range matches {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(dir)
		}
	}
}

// newSharedDir makes a temp dir owned by this process (see sweepStale).
func newSharedDir(kind string) (string, error) {
	sweepStale()
	dir, err := os.MkdirTemp("", sharedDirPrefix+kind+"-")
	if err != nil {
		return "", fmt.Errorf("cannot create temp dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
		return "", fmt.Errorf("cannot write owner file: %w", err)
	}
	return dir, nil
}

var (
	cleanupMu    sync.Mutex
	cleanupFuncs []func()
)

// registerCleanup adds fn to what Cleanup runs.
func registerCleanup(fn func()) {
	cleanupMu.Lock()
	cleanupFuncs = append(cleanupFuncs, fn)
	cleanupMu.Unlock()
}

// Cleanup stops the servers shared by this test binary (the ClickHouse
// server) and removes their data. Call it from TestMain after m.Run:
//
//	func TestMain(m *testing.M) { code := m.Run(); testbed.Cleanup(); os.Exit(code) }
//
// Without it the shared server still dies with the test binary (parent-death
// signal) and its temp dir is removed by the next test binary that starts one.
func Cleanup() {
	cleanupMu.Lock()
	fns := cleanupFuncs
	cleanupFuncs = nil
	cleanupMu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// Main runs a package's tests for TestMain: m.Run, then Cleanup, then — when
// the tests passed — a goroutine-leak check against the goroutines that
// existed before the tests. It returns the exit code:
//
//	func TestMain(m *testing.M) { os.Exit(testbed.Main(m)) }
func Main(m *testing.M) int {
	before := goleak.IgnoreCurrent()
	code := m.Run()
	Cleanup()
	if code == 0 {
		if err := goleak.Find(before); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}

// StartTestChild re-executes the running test binary with no test selected
// and env added, for crash tests: the package's TestMain sees env and runs
// the child (a deliverer, a runner) that the test can then SIGKILL.
func StartTestChild(t testing.TB, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start test child: %v", err)
	}
	return cmd
}

// WaitUntil polls cond every 100 ms until it holds, and fails the test
// with cond's last description after timeout. No timing is asserted: the
// deadline only keeps a broken test from hanging.
func WaitUntil(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s (last: %s)", timeout, what, last)
}
