package rules

import "time"

// Tracked returns how many clients jail holds state for (offences in its
// window, ban history), at most its share of JailsConfig.Capacity; 0 for
// a jail that is not configured. It takes each shard's lock in turn, so it
// is meant for a metrics scrape, not the request path.
func (j *Jails) Tracked(jail string) int {
	jl := j.jails[jail]
	if jl == nil {
		return 0
	}
	return jl.clients.len()
}

// Total returns how many offences all configured jails have received: a
// cheap way to tell whether anything was counted since the last look.
func (j *Jails) Total() uint64 {
	var n uint64
	for _, jl := range j.jails {
		n += jl.offences()
	}
	return n
}

// FindTime returns jail's window (its FindTime, defaults applied); 0 for
// a jail that is not configured.
func (j *Jails) FindTime(jail string) time.Duration {
	if jl := j.jails[jail]; jl != nil {
		return time.Duration(jl.findTime)
	}
	return 0
}
