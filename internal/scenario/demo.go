package scenario

import (
	"fmt"
	"sort"
	"time"
)

// DemoAttacks names the attack cases Demo embeds, in order, as
// "<rule id>/<variant>" (the Case of their Label without "attack/").
var DemoAttacks = []string{
	"mcp-tool-description-injection/important-tag",     // poisoned tool description
	"mcp-tool-definition-changed/rug-pull-description", // rug pull
	"mcp-sensitive-read-then-egress/aws-then-fetch",    // secret read then exfiltration
	"mcp-ssrf-internal-address/aws-metadata",           // SSRF to cloud metadata
	"mcp-path-traversal/url-encoded",                   // path traversal
	"mcp-session-user-mismatch/hijack-new-ip-and-user", // session hijack
}

// DemoEvents is the approximate number of benign events in Demo.
const DemoEvents = 3000

// Demo generates DemoSpan of benign traffic from BaseTime (every agent
// connects in the first hour) and the DemoAttacks, one every 20 minutes from
// BaseTime+3h. Replay it with its timestamps rebased (Shift) so the last
// event lands near now; the rules' learning periods (at most 2 h for the
// rules the demo shows) are covered by the first 3 hours.
func Demo(seed int64) Corpus {
	g := newGen(seed, 3)
	as := agents()
	count, k := 0, 0
	newSession := func(a *agent, t time.Time) {
		k++
		l := g.label(&Label{Case: fmt.Sprintf("benign/%s/%d", a.profile, k)})
		before := len(g.out.Events)
		g.benignSession(a, l, t)
		count += len(g.out.Events) - before
	}
	for i, a := range as {
		newSession(a, BaseTime.Add(time.Duration(i)*2*time.Minute))
	}
	for count < DemoEvents {
		a := as[g.r.IntN(len(as))]
		newSession(a, BaseTime.Add(30*time.Minute+time.Duration(g.r.Int64N(int64(DemoSpan-90*time.Minute)))))
	}
	cases := map[string]attackCase{}
	for _, c := range attackCases() {
		cases[c.rule+"/"+c.variant] = c
	}
	for i, name := range DemoAttacks {
		c, ok := cases[name]
		if !ok {
			panic("scenario: unknown demo attack " + name)
		}
		g.runAttack(as, c, i, BaseTime.Add(3*time.Hour+time.Duration(i)*20*time.Minute))
		// The demo's 6 hours are shorter than the learned profile's 3 days
		// of learning: it may fire (runAttack allows it), it is not expected.
		l := g.out.Cases[len(g.out.Cases)-1]
		l.Expect = without(l.Expect, outsideProfile)
	}
	return Merge(*g.out)
}

func sortStrings(s []string) { sort.Strings(s) }

// without returns xs without x (a new slice).
func without(xs []string, x string) []string {
	var out []string
	for _, y := range xs {
		if y != x {
			out = append(out, y)
		}
	}
	return out
}
