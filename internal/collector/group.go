package collector

import (
	"unsafe"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// keyGroups are a request's events grouped by partition key: the groups in
// the order their keys first occur, each group's events in request order
// (so one agent's events keep their order in its records).
type keyGroups struct {
	keys  []byte  // every group's key, back to back
	spans []int32 // group g's key is keys[spans[g]:spans[g+1]]
	heads []int32 // group g's first event
	next  []int32 // the next event of the same group, -1 at the end
}

func (g *keyGroups) key(gi int) []byte {
	lo, hi := g.spans[gi], g.spans[gi+1]
	return g.keys[lo:hi:hi]
}

// groupByKey groups evs by their partition key (appendPartitionKey).
func groupByKey(evs []event.Event) keyGroups {
	g := keyGroups{
		keys:  make([]byte, 0, keysSize(evs)),
		spans: []int32{0},
		next:  make([]int32, len(evs)),
	}
	tails := []int32(nil)
	var byKey map[string]int32 // built when a second key shows up
	last := -1                 // group of the previous event: runs of one key are the common case
	for i := range evs {
		k0 := len(g.keys)
		g.keys = appendPartitionKey(g.keys, &evs[i])
		k := g.keys[k0:]
		gi := -1
		if last >= 0 && string(k) == string(g.key(last)) {
			gi = last
		} else if byKey != nil {
			if v, ok := byKey[unsafe.String(unsafe.SliceData(k), len(k))]; ok {
				gi = int(v)
			}
		}
		g.next[i] = -1
		if gi >= 0 {
			g.keys = g.keys[:k0] // the group already has this key
			g.next[tails[gi]] = int32(i)
			tails[gi] = int32(i)
			last = gi
			continue
		}
		gi = len(g.heads)
		g.spans = append(g.spans, int32(len(g.keys)))
		g.heads = append(g.heads, int32(i))
		tails = append(tails, int32(i))
		if gi == 1 {
			byKey = make(map[string]int32, 8)
			byKey[unsafe.String(unsafe.SliceData(g.key(0)), len(g.key(0)))] = 0
		}
		if byKey != nil {
			byKey[unsafe.String(unsafe.SliceData(k), len(k))] = int32(gi)
		}
		last = gi
	}
	return g
}
