package config

import (
	"gatehouse/rules/firewall"
	"gatehouse/rules/intel"
	"net/url"
	"os"
	"strconv"
	"time"
)

// MaxFeeds is the most feeds intel.feeds may list: the HTTP path looks a
// client up in every feed at once, one bit per feed.
const MaxFeeds = 64

// Feed formats and actions (intel.feeds[].format, .action).
const (
	FeedFormatPlain    = "plain"
	FeedFormatSpamhaus = "spamhaus-drop-json"
	FeedFormatCrowdSec = "crowdsec"
	FeedActionDrop     = "drop"
	FeedActionForbid   = "403"
)

// politeFeedRefresh is the shortest refresh a url feed gets without a
// warning: public list publishers ban clients that poll faster (Spamhaus
// asks for no more than once an hour). A feed server of one's own may be
// polled faster, down to minFeedRefresh.
const (
	politeFeedRefresh = time.Minute
	minFeedRefresh    = time.Second
)

// defaultFeedRefresh is a url feed's refresh when neither the feed nor
// intel.refresh sets one.
const defaultFeedRefresh = time.Hour

func applyIntelDefaults(in *Intel) {
	for i := range in.Feeds {
		fd := &in.Feeds[i]
		if fd.Format == "" {
			fd.Format = FeedFormatPlain
		}
		if fd.Action == "" {
			fd.Action = FeedActionDrop
		}
		if fd.Refresh == 0 && fd.URL != "" {
			fd.Refresh = in.Refresh
			setDuration(&fd.Refresh, defaultFeedRefresh)
		}
	}
}

// feeds checks intel.feeds[]; fw is the firewall they may go into.
func (v *validator) feeds(in *Intel, fw Firewall) {
	if len(in.Feeds) > MaxFeeds {
		v.add("intel.feeds", "%d feeds; at most %d", len(in.Feeds), MaxFeeds)
	}
	seen := make(map[string]int, len(in.Feeds))
	for i := range in.Feeds {
		fd := &in.Feeds[i]
		f := "intel.feeds[" + strconv.Itoa(i) + "]"
		switch {
		case firewall.ValidFeedName(fd.Name) != nil:
			v.add(f+".name", "%q: write 1 to 16 characters of a-z, 0-9, - and _ (it names the feed's kernel set)", fd.Name)
		default:
			if j, dup := seen[fd.Name]; dup {
				v.add(f+".name", "%q is also intel.feeds[%d]", fd.Name, j)
			}
			seen[fd.Name] = i
		}
		switch {
		case fd.URL == "" && fd.File == "":
			v.add(f, "write url or file")
		case fd.URL != "" && fd.File != "":
			v.add(f+".file", "write url or file, not both")
		case fd.URL != "":
			u, err := url.Parse(fd.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				v.add(f+".url", "%q is not an http:// or https:// URL", fd.URL)
			}
			switch {
			case fd.Refresh.D() < minFeedRefresh:
				v.add(f+".refresh", "%s is shorter than %s", fd.Refresh.D(), minFeedRefresh)
			case fd.Refresh.D() < politeFeedRefresh:
				v.warn(f+".refresh", "%s is shorter than %s: public list publishers ban clients that poll this often", fd.Refresh.D(), politeFeedRefresh)
			}
		default:
			if fd.Refresh != 0 {
				v.add(f+".refresh", "a file feed is re-read when the file changes; refresh is for url feeds")
			}
			v.feedFile(f+".file", fd)
		}
		switch {
		case fd.APIKey.IsZero():
		case fd.URL == "":
			v.add(f+".api_key", "an API key is sent with a url feed's fetches; a file feed has none")
		case !fd.APIKey.HasValue():
			v.add(f+".api_key", "a sha256: reference cannot be sent; write env:NAME or file:PATH")
		}
		switch fd.Format {
		case FeedFormatPlain, FeedFormatSpamhaus, FeedFormatCrowdSec:
		default:
			v.add(f+".format", "%q: write plain, spamhaus-drop-json or crowdsec", fd.Format)
		}
		switch fd.Action {
		case FeedActionDrop:
			if fw.Backend != "none" && len(fw.Ports) == 0 {
				v.warn(f+".action", "drop feeds go into the kernel only with firewall.ports (the gateway's ports): a feed such as FireHOL level 1 lists private ranges, and dropping every packet from them would drop your upstreams' answers; until then this feed is enforced over HTTP")
			}
		case FeedActionForbid:
		default:
			v.add(f+".action", "%q: write drop or \"403\"", fd.Action)
		}
	}
}

// feedFile reads a file feed as serve does, so that check refuses what
// serve would.
func (v *validator) feedFile(field string, fd *Feed) {
	fh, err := os.Open(fd.File)
	if err != nil {
		v.add(field, "%v", err)
		return
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err == nil && fi.IsDir() {
		v.add(field, "%s is a directory", fd.File)
		return
	}
	format, err := intel.ParseFormat(fd.Format)
	if err != nil {
		return // reported on .format
	}
	l, err := intel.Parse(fh, format, intel.Limits{})
	if err != nil {
		v.add(field, "%s: %v", fd.File, err)
		return
	}
	if err := intel.VetFeed(intel.NewSet(l.Prefixes)); err != nil {
		v.add(field, "%s: %v", fd.File, err)
	}
}
