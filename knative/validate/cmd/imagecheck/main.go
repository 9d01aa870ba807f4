// Command imagecheck checks the images `ko resolve --oci-layout-path` built:
// every image a resolved manifest names must be an index holding linux/amd64
// and linux/arm64, each running as a non-root user and smaller than -max
// compressed: the size a registry reports and a node pulls (manifest,
// config and compressed layers), which is what a cold start waits for. It
// prints one line per image and platform with both the compressed and the
// unpacked size, and exits 1 if any check fails.
//
//	imagecheck -layout DIR [-max 20MB] resolved.yaml...
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// wantPlatforms are the platforms ko.yaml builds.
var wantPlatforms = []string{"linux/amd64", "linux/arm64"}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "imagecheck:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("imagecheck", flag.ContinueOnError)
	dir := fs.String("layout", "", "OCI layout ko wrote (--oci-layout-path)")
	maxMB := fs.Float64("max", 20, "largest compressed (pulled) image, in MB (10^6 bytes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() == 0 {
		return errors.New("usage: imagecheck -layout DIR [-max MB] resolved.yaml...")
	}
	p, err := layout.FromPath(*dir)
	if err != nil {
		return err
	}
	root, err := p.ImageIndex()
	if err != nil {
		return err
	}

	refs := map[string]string{} // digest → the object that runs it
	var order []string
	for _, f := range fs.Args() {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		found, err := images(b)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, im := range found {
			if _, ok := refs[im.digest]; !ok {
				refs[im.digest] = im.owner
				order = append(order, im.digest)
			}
		}
	}
	if len(order) == 0 {
		return errors.New("no name@sha256 image in the resolved manifests: were they resolved by ko?")
	}

	// Only what ko built is in the layout; pinned third-party images (the
	// gateway's nginx) are someone else's to size.
	built := map[string]bool{}
	rm, err := root.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range rm.Manifests {
		built[d.Digest.String()] = true
	}

	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tPLATFORM\tUSER\tCOMPRESSED\tUNPACKED\tRESULT")
	var failures []string
	checked := 0
	for _, dig := range order {
		name := refs[dig]
		if !built[dig] {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\tnot built by ko, skipped\n", name)
			continue
		}
		checked++
		fails, err := checkIndex(tw, root, dig, name, int64(*maxMB*1e6))
		if err != nil {
			fails = append(fails, fmt.Sprintf("%s: %v", name, err))
		}
		failures = append(failures, fails...)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(failures) > 0 {
		return fmt.Errorf("%d problem(s):\n  %s", len(failures), strings.Join(failures, "\n  "))
	}
	if checked == 0 {
		return errors.New("none of the manifests' images is in the layout")
	}
	fmt.Fprintf(out, "%d images, each for %s, non-root, under %g MB compressed (as pulled)\n", checked, strings.Join(wantPlatforms, " and "), *maxMB)
	return nil
}

func checkIndex(w io.Writer, root v1.ImageIndex, dig, name string, limit int64) ([]string, error) {
	h, err := v1.NewHash(dig)
	if err != nil {
		return nil, err
	}
	idx, err := root.ImageIndex(h)
	if err != nil {
		return nil, fmt.Errorf("not an image index in the layout (single-platform build?): %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var fails []string
	seen := map[string]bool{}
	for _, d := range im.Manifests {
		if d.Platform == nil || !d.MediaType.IsImage() {
			continue // attestations and the like
		}
		plat := d.Platform.OS + "/" + d.Platform.Architecture
		seen[plat] = true
		img, err := idx.Image(d.Digest)
		if err != nil {
			return fails, fmt.Errorf("%s: %w", plat, err)
		}
		user, compressed, uncompressed, err := describe(img)
		if err != nil {
			return fails, fmt.Errorf("%s: %w", plat, err)
		}
		var bad []string
		if !nonRoot(user) {
			bad = append(bad, fmt.Sprintf("runs as %q", user))
		}
		if compressed >= limit {
			bad = append(bad, fmt.Sprintf("%s compressed ≥ %s", mb(compressed), mb(limit)))
		}
		result := "ok"
		if len(bad) > 0 {
			result = strings.Join(bad, "; ")
			fails = append(fails, fmt.Sprintf("%s %s: %s", name, plat, result))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", name, plat, user, mb(compressed), mb(uncompressed), result)
	}
	for _, want := range wantPlatforms {
		if !seen[want] {
			fails = append(fails, fmt.Sprintf("%s: no %s image", name, want))
		}
	}
	return fails, nil
}

// describe returns the image's user and its size as pulled (manifest,
// config and compressed layers) and as unpacked on disk.
func describe(img v1.Image) (user string, compressed, uncompressed int64, err error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return "", 0, 0, err
	}
	m, err := img.Manifest()
	if err != nil {
		return "", 0, 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return "", 0, 0, err
	}
	compressed = int64(len(raw)) + m.Config.Size
	layers, err := img.Layers()
	if err != nil {
		return "", 0, 0, err
	}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return "", 0, 0, err
		}
		compressed += n
		u, err := uncompressedSize(l)
		if err != nil {
			return "", 0, 0, err
		}
		uncompressed += u
	}
	return cf.Config.User, compressed, uncompressed, nil
}

func uncompressedSize(l v1.Layer) (int64, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}

// nonRoot reports whether an image's User names a non-zero numeric uid:
// Kubernetes' runAsNonRoot can only verify a number, not a user name.
func nonRoot(user string) bool {
	uid, _, _ := strings.Cut(user, ":")
	n, err := strconv.Atoi(uid)
	return err == nil && n != 0
}

// image is a digest reference in a resolved manifest and the object
// (metadata.name) whose pod runs it.
type image struct{ digest, owner string }

// images finds the image fields of every document in a resolved manifest.
func images(data []byte) ([]image, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []image
	for {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var d map[string]any
		if err := yaml.Unmarshal(raw, &d); err != nil {
			return nil, err
		}
		owner := "?"
		if md, ok := d["metadata"].(map[string]any); ok {
			if n, ok := md["name"].(string); ok {
				owner = n
			}
		}
		walk(d, func(ref string) {
			if m := digestRef.FindStringSubmatch(ref); m != nil {
				out = append(out, image{digest: m[1], owner: owner})
			}
		})
	}
}

var digestRef = regexp.MustCompile(`@(sha256:[0-9a-f]{64})$`)

// walk calls f with the value of every "image" key in v.
func walk(v any, f func(string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "image" {
				f(s)
				continue
			}
			walk(x, f)
		}
	case []any:
		for _, x := range v {
			walk(x, f)
		}
	}
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
