package detect

import (
	"container/list"
	"fmt"
	"math/rand"
	"testing"
)

// refLRU is the straightforward LRU (container/list + map by key) the
// hashed lru must behave exactly like.
type refLRU struct {
	max     int
	ll      *list.List
	m       map[string]*list.Element
	evicted int
}

type refEntry struct {
	k string
	v int
}

func (r *refLRU) get(k string) (int, bool) {
	if el, ok := r.m[k]; ok {
		r.ll.MoveToFront(el)
		return el.Value.(*refEntry).v, true
	}
	return 0, false
}

func (r *refLRU) put(k string, v int) {
	if el, ok := r.m[k]; ok {
		el.Value.(*refEntry).v = v
		r.ll.MoveToFront(el)
		return
	}
	r.m[k] = r.ll.PushFront(&refEntry{k, v})
	for r.ll.Len() > r.max {
		old := r.ll.Back()
		r.ll.Remove(old)
		delete(r.m, old.Value.(*refEntry).k)
		r.evicted++
	}
}

func (r *refLRU) del(k string) {
	if el, ok := r.m[k]; ok {
		r.ll.Remove(el)
		delete(r.m, k)
	}
}

// TestLRUMatchesReference runs random get/put/set/del sequences on the
// hashed lru and the reference, with real hashes and with a hash that
// collides often (forcing chains), and compares every result, the order
// of entries and the eviction count.
func TestLRUMatchesReference(t *testing.T) {
	for _, collide := range []bool{false, true} {
		rng := rand.New(rand.NewSource(1))
		evicts := 0
		c := newLRU[int](50, func() { evicts++ })
		ref := &refLRU{max: 50, ll: list.New(), m: map[string]*list.Element{}}
		h := func(k string) uint64 {
			if collide {
				return uint64(len(k) % 3) // few buckets: long chains
			}
			return keyHashS(k)
		}
		for i := 0; i < 200000; i++ {
			k := fmt.Sprintf("k%d", rng.Intn(120))
			switch op := rng.Intn(5); op {
			case 0, 1:
				g, ok := c.getH(h(k), []byte(k))
				w, wok := ref.get(k)
				if g != w || ok != wok {
					t.Fatalf("collide=%v op %d get(%s) = %d,%v want %d,%v", collide, i, k, g, ok, w, wok)
				}
			case 2:
				c.putH(h(k), k, i)
				ref.put(k, i)
			case 3:
				if rng.Intn(2) == 0 { // lookupH + direct update, as new_term does
					n := c.lookupH(h(k), []byte(k))
					if _, wok := ref.m[k]; (n != nil) != wok {
						t.Fatalf("lookupH(%s) = %v, want present %v", k, n, wok)
					}
					if n != nil {
						n.val = i
						ref.put(k, i)
					}
					continue
				}
				ok := c.setH(h(k), []byte(k), i)
				_, wok := ref.m[k]
				if ok != wok {
					t.Fatalf("set(%s) = %v want %v", k, ok, wok)
				}
				if wok {
					ref.put(k, i)
				}
			case 4:
				c.delH(h(k), []byte(k))
				ref.del(k)
			}
			if c.len() != ref.ll.Len() {
				t.Fatalf("op %d: len %d want %d", i, c.len(), ref.ll.Len())
			}
		}
		var got, want []string
		c.each(func(k string, v int) { got = append(got, fmt.Sprint(k, "=", v)) })
		for el := ref.ll.Back(); el != nil; el = el.Prev() {
			e := el.Value.(*refEntry)
			want = append(want, fmt.Sprint(e.k, "=", e.v))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("collide=%v: entries differ:\n%v\n%v", collide, got, want)
		}
		if evicts != ref.evicted || int(c.evicted) != ref.evicted || evicts == 0 {
			t.Fatalf("collide=%v: evictions %d/%d, want %d (> 0)", collide, evicts, c.evicted, ref.evicted)
		}
		if len(c.m) > c.n {
			t.Fatalf("map has %d hashes for %d entries", len(c.m), c.n)
		}
	}
	// The string-key API agrees with the hashed one.
	c := newLRU[int](0, nil)
	c.put("a", 1)
	if v, ok := c.getB([]byte("a")); !ok || v != 1 {
		t.Fatal("getB after put")
	}
	c.setB([]byte("a"), 2)
	if v, ok := c.get("a"); !ok || v != 2 {
		t.Fatal("get after setB")
	}
	c.del("a")
	if _, ok := c.get("a"); ok || c.len() != 0 {
		t.Fatal("del")
	}
}
