package detect

// ForgetForwarded drops the ingest role's forward caches, as a restart or a
// rebalance does (tests: forwarding again must change no finding).
func (e *Engine) ForgetForwarded() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fwd, e.fwdFirst, e.fwdDistinct = nil, nil, nil
}
