package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// metrics are the fleet's Prometheus metrics.
type metrics struct {
	up          prometheus.GaugeFunc
	lag         prometheus.GaugeFunc
	outbox      prometheus.Gauge
	resyncs     *prometheus.CounterVec
	propagation prometheus.Histogram
	pushed      prometheus.Counter
	received    *prometheus.CounterVec
	offences    *prometheus.CounterVec
	// The two series of offences, resolved once: the request path
	// counts into offLocal.
	offLocal, offShared prometheus.Counter
}

func newMetrics(f *Fleet) *metrics {
	m := &metrics{
		up: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatehouse_fleet_redis_up",
			Help: "1 when the last call to the fleet's Redis succeeded.",
		}, func() float64 {
			if f.up.Load() {
				return 1
			}
			return 0
		}),
		lag: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gatehouse_fleet_sync_lag_seconds",
			Help: "Age, on Redis's clock, of the last change-stream entry applied here when it was applied.",
		}, func() float64 { return time.Duration(f.lag.Load()).Seconds() }),
		outbox: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_fleet_outbox_entries",
			Help: "Bans and unbans made here that Redis has not acknowledged yet.",
		}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_fleet_resyncs_total",
			Help: "Full pulls of the fleet's bans, by reason: no_cursor, epoch (Redis lost its data), trimmed (fell behind the stream).",
		}, []string{"reason"}),
		propagation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gatehouse_fleet_propagation_seconds",
			Help:    "Time from a change entering Redis on another node to its application here.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		pushed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_fleet_pushed_total",
			Help: "Bans and unbans this node pushed that Redis applied (stale ones excluded).",
		}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_fleet_received_total",
			Help: "Bans and unbans from the fleet applied here, by op.",
		}, []string{"op"}),
		offences: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_fleet_offences_total",
			Help: "Offences of shared jails, by where they were counted: shared (Redis) or local (fallback).",
		}, []string{"counted"}),
	}
	m.offLocal, m.offShared = m.offences.WithLabelValues("local"), m.offences.WithLabelValues("shared")
	return m
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.up, m.lag, m.outbox, m.resyncs, m.propagation, m.pushed, m.received, m.offences} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// tick refreshes the clock offset, prunes expired state in Redis and
// writes this node's heartbeat, every Heartbeat.
func (f *Fleet) tick(ctx context.Context) {
	t := time.NewTicker(f.heartbeat)
	defer t.Stop()
	for {
		if err := f.beat(ctx); err != nil && ctx.Err() == nil {
			f.setUp(false, err)
		}

		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (f *Fleet) beat(ctx context.Context) error {
	if err := f.syncClock(ctx); err != nil {
		return err
	}
	if err := pruneScript.Run(ctx, f.rdb, []string{f.k.bans, f.k.exp, f.k.unbans, f.k.unexp}, 1000).Err(); err != nil {
		return fmt.Errorf("prune fleet state: %w", err)
	}
	_, outbox, err := f.journal.Outbox(0)
	if err != nil {
		return err
	}
	f.m.outbox.Set(float64(outbox))
	// Counting the bans copies the ban list: once a minute at most.
	if last := f.counted.Load(); last == 0 || time.Since(time.Unix(0, last)) >= time.Minute {
		f.bansHeld.Store(int64(len(f.bans.List())))
		f.counted.Store(time.Now().UnixNano())
	}
	hb, err := json.Marshal(NodeStatus{
		Node:       f.node,
		Seen:       f.now().Add(time.Duration(f.offset.Load())).UTC(),
		LagSeconds: time.Duration(f.lag.Load()).Seconds(),
		Outbox:     outbox,
		Bans:       int(f.bansHeld.Load()),
	})
	if err != nil {
		return err
	}
	if err := f.rdb.HSet(ctx, f.k.nodes, f.node, hb).Err(); err != nil {
		return fmt.Errorf("write fleet heartbeat: %w", err)
	}
	return nil
}

// NodeStatus is a node's last heartbeat, as `gatehouse fleet status`
// shows it.
type NodeStatus struct {
	Node string `json:"node"`
	// Seen is when the node last wrote it, on Redis's clock.
	Seen time.Time `json:"seen"`
	// LagSeconds is the age of the last change-stream entry the node
	// applied, when it applied it.
	LagSeconds float64 `json:"lag_seconds"`
	// Outbox is how many changes the node had not pushed yet.
	Outbox int `json:"outbox"`
	// Bans is how many active bans the node held, counted at most a
	// minute before.
	Bans int `json:"bans"`
}

// Status is the fleet as Redis sees it.
type Status struct {
	Epoch  string
	Now    time.Time // Redis's clock
	Bans   int64     // in the shared hash, expired ones not yet pruned included
	Unbans int64     // tombstones
	Stream int64     // change-stream entries
	Nodes  []NodeStatus
}

// ReadStatus reads the fleet's state from Redis under prefix (zero:
// "gh"), for `gatehouse fleet status`. Nodes are sorted by name.
func ReadStatus(ctx context.Context, rdb *redis.Client, prefix string) (Status, error) {
	if prefix == "" {
		prefix = defaultPrefix
	}
	k := newKeys(prefix)
	var st Status
	pipe := rdb.Pipeline()
	now := pipe.Time(ctx)
	epoch := pipe.Get(ctx, k.epoch)
	bans := pipe.HLen(ctx, k.bans)
	unbans := pipe.HLen(ctx, k.unbans)
	stream := pipe.XLen(ctx, k.stream)
	nodes := pipe.HGetAll(ctx, k.nodes)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Status{}, fmt.Errorf("read fleet status: %w", err)
	}
	st.Now = now.Val().UTC()
	st.Epoch = epoch.Val()
	st.Bans, st.Unbans, st.Stream = bans.Val(), unbans.Val(), stream.Val()
	for name, v := range nodes.Val() {
		var n NodeStatus
		if err := json.Unmarshal([]byte(v), &n); err != nil {
			n = NodeStatus{Node: name}
		}
		st.Nodes = append(st.Nodes, n)
	}
	slices.SortFunc(st.Nodes, func(a, b NodeStatus) int {
		switch {
		case a.Node < b.Node:
			return -1
		case a.Node > b.Node:
			return 1
		}
		return 0
	})
	return st, nil
}
