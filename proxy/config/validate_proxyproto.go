package config

import "strconv"

// proxyProtocol checks listen.proxy_protocol: real prefixes, and a public
// listener for them to apply to.
func (v *validator) proxyProtocol(f *File) {
	for i, p := range f.Listen.ProxyProtocol {
		field := "listen.proxy_protocol[" + strconv.Itoa(i) + "]"
		switch {
		case !p.IsValid():
			v.add(field, "empty entry; write the load balancer's IP address or CIDR prefix")
		case p.Bits() == 0:
			// Every peer must then send a header: right only when the
			// listener is reachable through the balancer alone.
			v.warn(field, "%s lets any peer that reaches the listener name its own client address; list only the load balancers", p)
		}
	}
	if len(f.Listen.ProxyProtocol) > 0 && len(f.Hosts) == 0 {
		v.add("listen.proxy_protocol", "a config without hosts has no public listener to read PROXY headers on")
	}
}
