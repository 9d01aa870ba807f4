package webhook

import "net"

// UseResolver makes d look names up with r: a test's DNS, so a name can
// resolve inside at delivery time.
func UseResolver(d *Deliverer, r *net.Resolver) {
	d.policy.Resolver = r
	d.client = d.policy.Client()
}
