package kafka

import (
	"hash/fnv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// PartitionOf is the partition of key among n partitions: FNV-1a of the key
// modulo n. The keyed analyzer roles (detect, respond) place their records
// with it (KeyPartitioner) and use it again to know which state a partition
// owns, so the two can never disagree. n ≤ 0 gives 0.
func PartitionOf(key []byte, n int) int32 {
	if n <= 0 {
		return 0
	}
	h := fnv.New32a()
	h.Write(key) //nolint:errcheck // never fails
	return int32(h.Sum32() % uint32(n))
}

// KeyPartitioner places every record by PartitionOf(its key, the topic's
// partition count).
func KeyPartitioner() kgo.Partitioner {
	return kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
		return func(r *kgo.Record, n int) int { return int(PartitionOf(r.Key, n)) }
	})
}
