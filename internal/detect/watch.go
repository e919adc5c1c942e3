package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultWatchInterval is how often Watch polls the rule directory.
const DefaultWatchInterval = 3 * time.Second

// Watch polls dir every interval (default 3s) for changed rule or list
// files (names, sizes, modification times and content hashes) and reloads
// the pack. A change is acted on only once the files have settled: the
// directory must look the same on two polls in a row, so a file caught
// half-written (created or truncated but not yet filled) is not loaded.
// Writers should still replace rule files atomically (write a temporary
// file, then rename it over the old one). A pack that fails to load is
// rejected with a logged error (and
// mcpwatch_detect_reloads_total{result="failed"}); the running pack stays.
// State of unchanged rules (same id and version) is kept. onReload, if not
// nil, is called after every attempt with its error. Watch returns when ctx
// is done.
func (e *Engine) Watch(ctx context.Context, dir string, interval time.Duration, onReload func(error)) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	// Compare against the files the running pack was loaded from, so a
	// change between LoadDir and Watch is not missed.
	last := e.Pack().signature
	if last == "" {
		last = dirSignature(dir)
	}
	pending := "" // a changed signature seen on the previous poll
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sig := dirSignature(dir)
		if sig == last {
			pending = ""
			continue
		}
		if sig != pending {
			// Changed since the previous poll: files may still be
			// being written; reload when they look the same next time.
			pending = sig
			continue
		}
		pending = ""
		last = sig
		err := e.ReloadDir(ctx, dir)
		if onReload != nil {
			onReload(err)
		}
	}
}

// ReloadDir loads dir and installs it, keeping the running pack on error.
func (e *Engine) ReloadDir(ctx context.Context, dir string) error {
	p, err := LoadDir(dir)
	if err != nil {
		e.mu.Lock()
		e.stats.ReloadFailed++
		e.mu.Unlock()
		e.m.reloads.WithLabelValues("failed").Inc()
		e.opts.Logger.Error("rule pack rejected; keeping the running rules", "dir", dir, "err", err)
		return err
	}
	e.Replace(p)
	e.mu.Lock()
	e.stats.ReloadOK++
	e.mu.Unlock()
	e.m.reloads.WithLabelValues("ok").Inc()
	e.opts.Logger.Info("rule pack reloaded", "dir", dir, "rules", len(p.Rules))
	if err := e.LoadBaselines(ctx); err != nil {
		e.opts.Logger.Warn("cannot load baselines after reload", "err", err)
	}
	return nil
}

// dirSignature hashes the names, sizes, modification times and contents
// of the YAML files under dir. Modification times alone miss a rewrite
// that keeps the size within one timestamp tick, or a copy that preserves
// times (cp -p, rsync -t, tar); the content hash catches those.
func dirSignature(dir string) string {
	var lines []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			return nil
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil
		}
		sum := "unreadable"
		if b, err := os.ReadFile(p); err == nil {
			h := sha256.Sum256(b)
			sum = hex.EncodeToString(h[:])
		}
		lines = append(lines, p+"\x00"+st.ModTime().UTC().Format(time.RFC3339Nano)+"\x00"+strconv.FormatInt(st.Size(), 10)+"\x00"+sum)
		return nil
	})
	sort.Strings(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(h[:])
}
