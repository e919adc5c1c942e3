package recent

import "testing"

// TestMapKeepsTheMostRecent: with room for 4 keys, the 2 to 4 keys put last
// are remembered, older ones are forgotten a generation later, and a key
// put again survives a turn that drops its old generation.
func TestMapKeepsTheMostRecent(t *testing.T) {
	m := New[int, string](4)
	for k := range 4 {
		m.Put(k, "v")
	}
	// Generations: old {0,1}, cur {2,3}.
	for k := range 4 {
		if _, ok := m.Get(k); !ok {
			t.Errorf("key %d forgotten while 4 fit", k)
		}
	}
	m.Put(1, "again") // refreshed, a turn: old {2,3}, cur {1}
	m.Put(4, "v")     // cur {1,4}
	m.Put(5, "v")     // turn: old {1,4}, cur {5}
	for k, want := range map[int]bool{0: false, 1: true, 2: false, 3: false, 4: true, 5: true} {
		if _, ok := m.Get(k); ok != want {
			t.Errorf("key %d remembered: %v, want %v", k, ok, want)
		}
	}
	if v, _ := m.Get(1); v != "again" {
		t.Errorf("key 1 = %q, want the value put last", v)
	}
	if n := m.Len(); n != 3 {
		t.Errorf("Len %d, want 3", n)
	}
}

// TestMapBound: however many keys are put, at most n are kept.
func TestMapBound(t *testing.T) {
	m := New[int, int](100)
	for k := range 10_000 {
		m.Put(k, k)
		if m.Len() > 100 {
			t.Fatalf("after %d puts: %d keys kept, bound 100", k+1, m.Len())
		}
	}
	if _, ok := m.Get(9_999); !ok {
		t.Error("the last key put is forgotten")
	}
}
