package fleet

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"gatehouse/rules"
)

// ShareOffence takes an offence of a shared jail to be counted in Redis,
// or turns it down (the jail then counts it locally) while Redis is
// unreachable or the queue is full. It never blocks. It implements
// rules.OffenceSharer.
func (f *Fleet) ShareOffence(o rules.Offence) bool {
	if !f.up.Load() {
		f.m.offLocal.Inc()
		return false
	}
	select {
	case f.offences <- o:
		return true
	default:
		f.m.offLocal.Inc()
		return false
	}
}

// countLoop counts the queued offences in batches, one Lua call each, off
// the request path. A batch Redis could not count is counted locally.
func (f *Fleet) countLoop(ctx context.Context) {
	batch := make([]rules.Offence, 0, offenceBatch)
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case o := <-f.offences:
					o.CountLocally()
				default:
					return
				}
			}
		case o := <-f.offences:
			batch = append(batch[:0], o)
		}
		for more := true; more && len(batch) < offenceBatch; {
			select {
			case o := <-f.offences:
				batch = append(batch, o)
			default:
				more = false
			}
		}
		if err := f.count(ctx, batch); err != nil {
			f.setUp(false, err)
			f.m.offLocal.Add(float64(len(batch)))
			for _, o := range batch {
				o.CountLocally()
			}
		}
	}
}

// count runs the offend script on batch and applies the bans it made.
func (f *Fleet) count(ctx context.Context, batch []rules.Offence) error {
	keys := make([]string, 0, 5+2*len(batch))
	keys = append(keys, f.k.bans, f.k.exp, f.k.unbans, f.k.unexp, f.k.stream)
	var jails []string
	index := map[string]int{}
	head := []any{f.streamMax, f.node, 0}
	var body []any
	for _, o := range batch {
		i, ok := index[o.Jail]
		if !ok {
			p := o.Policy
			jails = append(jails, o.Jail)
			i = len(jails)
			index[o.Jail] = i
			head = append(head, o.Jail, p.MaxRetry, micros(p.FindTime), micros(p.BanTime),
				strconv.FormatFloat(p.Factor, 'g', -1, 64), micros(p.Max), micros(p.Forget))
		}
		client := o.Prefix.String()
		keys = append(keys, f.k.offences(o.Jail, client), f.k.history(o.Jail, client))
		body = append(body, i, client, f.toRemote(o.At), f.node+":"+strconv.FormatUint(f.seq.Add(1), 10), o.Reason)
	}
	head[2] = len(jails)
	res, err := offendScript.Run(ctx, f.rdb, keys, append(head, body...)...).StringSlice()
	if err != nil {
		return fmt.Errorf("count %d shared offences in redis: %w", len(batch), err)
	}
	f.setUp(true, nil)
	f.m.offShared.Add(float64(len(batch)))
	for i := 0; i+1 < len(res); i += 2 {
		f.receiveBan(res[i], res[i+1])
		f.log.Info("fleet ban", "prefix", res[i], "node", f.node)
		f.decided(batch, res[i])
	}
	return nil
}

// decided tells the jail whose offence in batch made the fleet ban the
// client ps, now on this node's ban list, so that its escalation counts
// it: the node that counted that offence is the one that escalates, once
// for the fleet, and pushes the network and the lifted members.
func (f *Fleet) decided(batch []rules.Offence, ps string) {
	p, err := parseClient(ps)
	if err != nil {
		return
	}
	b, ok := f.exact(p)
	if !ok {
		return
	}
	for _, o := range batch {
		if o.Prefix == p && o.Jail == b.Jail {
			o.Banned(b)
			return
		}
	}
}

func micros(d time.Duration) int64 { return int64(d / time.Microsecond) }
