package testbed

import (
	"os/exec"
	"time"
)

// Process is a child process started by StartProcess: it dies with the
// parent (parent-death signal) and runs in its own process group.
type Process struct{ p *proc }

// StartProcess starts cmd with stdout and stderr appended to logPath. The
// child gets SIGKILL if this process dies, so nothing outlives a test run.
func StartProcess(cmd *exec.Cmd, logPath string) (*Process, error) {
	p, err := startProc(cmd, logPath)
	if err != nil {
		return nil, err
	}
	return &Process{p: p}, nil
}

// Pid is the child's process id.
func (p *Process) Pid() int { return p.p.cmd.Process.Pid }

// Exited reports whether the child has ended.
func (p *Process) Exited() bool { return p.p.exited() }

// Done is closed when the child has ended.
func (p *Process) Done() <-chan struct{} { return p.p.done }

// Err is the child's exit status (valid once Done is closed).
func (p *Process) Err() error { <-p.p.done; return p.p.err }

// Stop sends SIGTERM to the child's process group, waits up to grace, then
// SIGKILLs it; it returns once the child has exited.
func (p *Process) Stop(grace time.Duration) { p.p.stop(grace) }

// Kill SIGKILLs the child's process group (a crash) and waits for it.
func (p *Process) Kill() { p.p.kill() }

// WaitFor polls check every 100 ms until it returns nil, the child exits,
// or timeout passes.
func (p *Process) WaitFor(timeout time.Duration, check func() error) error {
	return waitFor(timeout, p.p, check)
}

// Tail returns the last n bytes of a log file (for error messages).
func Tail(path string, n int64) string { return tail(path, n) }
