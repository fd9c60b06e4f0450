package rules

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
