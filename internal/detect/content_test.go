package detect

import (
	"fmt"
	"hash/maphash"
	"testing"
)

// TestContentCacheTwoWay: two texts of one set are both kept; a third
// replaces the one used less recently, not the one just used (a
// direct-mapped table would have lost the first text to the second).
func TestContentCacheTwoWay(t *testing.T) {
	c := newContentCache(8) // 4 sets
	set := func(s string) uint64 { return maphash.String(c.seed, s) & uint64(len(c.mru)-1) }
	var same []string
	for i := 0; len(same) < 3; i++ {
		s := fmt.Sprintf("text number %d of the set test", i)
		if len(same) == 0 || set(s) == set(same[0]) {
			same = append(same, s)
		}
	}
	a, b, x := same[0], same[1], same[2]
	ea := c.entry(a)
	ea.known, ea.val = 1, 1 // a result kept with a
	if eb := c.entry(b); eb == ea || eb.s != b {
		t.Fatal("b took a's entry")
	}
	if e := c.entry(a); e != ea || e.known != 1 {
		t.Fatal("a was lost when b came")
	}
	c.entry(x) // replaces b (used less recently than a)
	if e := c.entry(a); e != ea || e.known != 1 {
		t.Fatal("a was replaced by a third text although b was used less recently")
	}
	for i := range c.tab {
		if c.tab[i].s == b {
			t.Fatal("b is still cached: the third text replaced another set's entry")
		}
	}
	if e := c.entry(b); e.known != 0 {
		t.Fatal("b came back with a result it never had")
	}
}

// TestToolDefinitionsHaveTheirOwnCache: definition texts go to ccDef,
// other fields to cc.
func TestToolDefinitionsHaveTheirOwnCache(t *testing.T) {
	var ec evalCtx
	ec.cc, ec.ccDef = newContentCache(contentEntries), newContentCache(defEntries)
	ec.reset(nil)
	desc, args := "a tool description long enough", `{"path":"a long enough argument"}`
	ed := ec.entryFor(toolDescriptionIdx, desc)
	ea := ec.entryFor(argumentsIdx, args)
	in := func(c *contentCache, e *contentEntry) bool {
		for i := range c.tab {
			if &c.tab[i] == e {
				return true
			}
		}
		return false
	}
	if !in(ec.ccDef, ed) || in(ec.cc, ed) || !in(ec.cc, ea) || in(ec.ccDef, ea) {
		t.Fatal("definition or argument text in the wrong cache")
	}
}
