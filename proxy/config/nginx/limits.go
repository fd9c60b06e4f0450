package nginx

import (
	"fmt"
	"strconv"
	"strings"

	"gatehouse/proxy/config/nginx/conf"
)

// hostLimits sets max_body from client_max_body_size, body_read_timeout
// from client_body_timeout and buffer_requests from
// proxy_request_buffering.
func (t *translator) hostLimits(b *hostBuild) {
	h := b.host
	d := b.sc.bodySize
	if d == nil {
		h.maxBody, h.maxBodyNote = "1MB", "nginx's default client_max_body_size"
	} else {
		size, err := nginxSize(d.Args)
		if err != nil {
			t.find(d, "%v", err)
		} else {
			t.done(d)
			h.maxBody, h.maxBodySrc = size, d
		}
	}
	// nginx's client_body_timeout default (60s) is gatehouse's too.
	if d := b.sc.bodyTimeout; d != nil {
		if v, err := nginxSeconds(d.Args); err != nil {
			t.find(d, "%v", err)
		} else {
			t.done(d)
			h.bodyTimeout, h.bodyTimeoutSrc = v, d
		}
	}
	// nginx buffers request bodies unless told not to; gatehouse streams
	// them unless buffer_requests, which needs max_body.
	h.buffer, h.bufferSrc = true, b.sc.buffering
	if d := b.sc.buffering; d != nil {
		if len(d.Args) != 1 || (d.Args[0] != "on" && d.Args[0] != "off") {
			t.find(d, "want on or off")
		} else {
			t.done(d)
			h.buffer = d.Args[0] == "on"
		}
	}
	if h.buffer && h.maxBody == "" {
		// client_max_body_size 0: nothing would bound the buffer.
		h.buffer = false
		src := b.sc.buffering
		if src == nil {
			src = b.sc.bodySize
		}
		t.find(src, "gatehouse buffers request bodies only up to max_body, and client_max_body_size is 0 (no limit): bodies stream to the upstream")
	}
	// Locations with settings of their own (client_max_body_size is a
	// route's).
	walkLocations(b.server, func(l *conf.Directive) {
		_, p := locationArgs(l)
		for _, c := range l.Block {
			switch {
			case c.Name == "client_body_timeout" && c != b.sc.bodyTimeout:
				if v, err := nginxSeconds(c.Args); err == nil && v == orDefault(h.bodyTimeout, "60s") {
					t.done(c)
				} else {
					t.find(c, "gatehouse has one body_read_timeout per host (%s); location %s differs", orDefault(h.bodyTimeout, "60s"), p)
				}
			case c.Name == "proxy_request_buffering" && c != b.sc.buffering:
				if len(c.Args) == 1 && (c.Args[0] == "on") == h.buffer {
					t.done(c)
				} else {
					t.find(c, "gatehouse buffers request bodies per host (buffer_requests: %v); location %s differs", h.buffer, p)
				}
			}
		}
	})
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// nginxSeconds turns an nginx time ("30s", "1m", "1m30s", "90": seconds)
// into a gatehouse duration in whole seconds ("90s").
func nginxSeconds(args []string) (string, error) {
	if len(args) != 1 || args[0] == "" {
		return "", fmt.Errorf("want one time")
	}
	units := map[string]int64{"ms": 0, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "M": 30 * 86400, "y": 365 * 86400}
	s, total := args[0], int64(0)
	for s != "" {
		i := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == 0 || i > 9 {
			return "", fmt.Errorf("%q is not an nginx time", args[0])
		}
		n, _ := strconv.ParseInt(s[:i], 10, 64)
		s = s[i:]
		j := 0
		for j < len(s) && (s[j] < '0' || s[j] > '9') {
			j++
		}
		unit := s[:j]
		s = s[j:]
		if unit == "" {
			if s != "" {
				return "", fmt.Errorf("%q is not an nginx time", args[0])
			}
			unit = "s"
		}
		mul, ok := units[unit]
		switch {
		case !ok:
			return "", fmt.Errorf("%q is not an nginx time", args[0])
		case mul == 0 && n%1000 != 0:
			return "", fmt.Errorf("%q is not whole seconds, which gatehouse's timeouts are", args[0])
		case mul == 0:
			total += n / 1000
		default:
			total += n * mul
		}
	}
	if total <= 0 {
		return "", fmt.Errorf("%q: gatehouse needs a timeout greater than 0", args[0])
	}
	return strconv.FormatInt(total, 10) + "s", nil
}

// nginxSize turns an nginx size ("10m", "512k", "0") into a gatehouse
// Size ("10MB", "512KB", "" for no limit).
func nginxSize(args []string) (string, error) {
	if len(args) != 1 || args[0] == "" {
		return "", fmt.Errorf("want one size")
	}
	s := strings.ToLower(args[0])
	unit := ""
	switch s[len(s)-1] {
	case 'k':
		unit = "KB"
	case 'm':
		unit = "MB"
	case 'g':
		unit = "GB"
	}
	if unit != "" {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return "", fmt.Errorf("%q is not an nginx size", args[0])
	}
	if n == 0 {
		return "", nil
	}
	return strconv.FormatInt(n, 10) + unit, nil
}
