// Package devkafka runs an embedded Kafka-protocol broker (kfake) on
// loopback, for the dev runner when KAFKA_BROKERS is unset and for tests.
// Clients talk to it over TCP exactly as to Kafka. It can be stopped and
// started again on the same port with its data, topics, committed offsets
// and producer ids kept, to test what happens while Kafka is down. Never
// deployed.
package devkafka

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config says how to run the broker.
type Config struct {
	// Port on 127.0.0.1; 0 picks a free one at the first start and keeps
	// it for restarts.
	Port int
	// Topics are created at the first start; others are created on first
	// use.
	Topics []string
	// Partitions of every topic; 0 means 3.
	Partitions int32
	// DataDir keeps the broker's state across Stop and Start; empty means a
	// temporary directory that Close removes.
	DataDir string
}

// Broker is one embedded single-node cluster.
type Broker struct {
	mu      sync.Mutex
	cfg     Config
	tempDir bool
	cluster *kfake.Cluster // nil while stopped
}

// Start starts a broker.
func Start(cfg Config) (*Broker, error) {
	if cfg.Partitions <= 0 {
		cfg.Partitions = 3
	}
	b := &Broker{cfg: cfg}
	if b.cfg.DataDir == "" {
		dir, err := os.MkdirTemp("", "devkafka-")
		if err != nil {
			return nil, fmt.Errorf("devkafka: %w", err)
		}
		b.cfg.DataDir, b.tempDir = dir, true
	}
	if err := b.Start(); err != nil {
		b.removeTemp()
		return nil, err
	}
	return b, nil
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.cfg.Port))
}

// Brokers is Addr as a bootstrap list, for kafka.Config.Brokers.
func (b *Broker) Brokers() []string { return []string{b.Addr()} }

// Start starts a stopped broker again on the same port, with the state it
// had when stopped. Starting a running broker does nothing.
func (b *Broker) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cluster != nil {
		return nil
	}
	c, err := kfake.NewCluster(
		kfake.Ports(b.cfg.Port),
		kfake.DataDir(b.cfg.DataDir),
		kfake.SeedTopics(b.cfg.Partitions, b.cfg.Topics...),
		kfake.DefaultNumPartitions(int(b.cfg.Partitions)),
		kfake.AllowAutoTopicCreation(),
	)
	if err != nil {
		return fmt.Errorf("devkafka: start on port %d: %w", b.cfg.Port, err)
	}
	if b.cfg.Port == 0 {
		_, p, err := net.SplitHostPort(c.ListenAddrs()[0])
		if err == nil {
			b.cfg.Port, err = strconv.Atoi(p)
		}
		if err != nil {
			c.Close()
			return fmt.Errorf("devkafka: port: %w", err)
		}
	}
	b.cluster = c
	return nil
}

// Stop shuts the broker down, dropping every connection, and keeps its
// state for Start. Stopping a stopped broker does nothing.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cluster != nil {
		b.cluster.Close()
		b.cluster = nil
	}
}

// Close stops the broker and removes a temporary data directory.
func (b *Broker) Close() error {
	b.Stop()
	return b.removeTemp()
}

func (b *Broker) removeTemp() error {
	if !b.tempDir {
		return nil
	}
	if err := os.RemoveAll(b.cfg.DataDir); err != nil {
		return errors.Join(errors.New("devkafka: remove data"), err)
	}
	return nil
}
