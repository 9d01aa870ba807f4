// Command imagecheck checks the images `ko resolve` pushed to the registry
// KO_DOCKER_REPO names (make images runs it inside cmd/koregistry): every
// image a resolved manifest names there must be an index holding
// linux/amd64 and linux/arm64, each running as a non-root user and smaller
// than -max compressed: the size a registry reports and a node pulls
// (manifest, config and compressed layers), which is what a cold start
// waits for. It prints one line per image and platform with both the
// compressed and the unpacked size, copies the images into the OCI layout
// -layout names, one after another, and exits 1 if any check fails.
//
//	imagecheck [-repo REGISTRY/REPO] [-layout DIR] [-max 20MB] resolved.yaml...
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

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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
	repo := fs.String("repo", os.Getenv("KO_DOCKER_REPO"), "where ko pushed the images (default $KO_DOCKER_REPO)")
	dir := fs.String("layout", "", "OCI layout to copy the checked images into (optional)")
	maxMB := fs.Float64("max", 20, "largest compressed (pulled) image, in MB (10^6 bytes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *repo == "" || fs.NArg() == 0 {
		return errors.New("usage: imagecheck [-repo REGISTRY/REPO] [-layout DIR] [-max MB] resolved.yaml...")
	}
	var lp layout.Path
	if *dir != "" {
		var err error
		if lp, err = layout.Write(*dir, empty.Index); err != nil {
			return err
		}
	}

	owners := map[string]string{} // reference → the object that runs it
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
			if _, ok := owners[im.ref]; !ok {
				owners[im.ref] = im.owner
				order = append(order, im.ref)
			}
		}
	}
	if len(order) == 0 {
		return errors.New("no name@sha256 image in the resolved manifests: were they resolved by ko?")
	}

	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tPLATFORM\tUSER\tCOMPRESSED\tUNPACKED\tRESULT")
	var failures []string
	checked := 0
	for _, ref := range order {
		owner := owners[ref]
		// Only what ko built is in the registry; pinned third-party images
		// (the gateway's nginx) are someone else's to size.
		if !strings.HasPrefix(ref, *repo+"/") {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\tnot built by ko, skipped\n", owner)
			continue
		}
		checked++
		fails, err := check(tw, lp, ref, owner, int64(*maxMB*1e6))
		if err != nil {
			fails = append(fails, fmt.Sprintf("%s: %v", owner, err))
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
		return fmt.Errorf("none of the manifests' images is in %s", *repo)
	}
	fmt.Fprintf(out, "%d images, each for %s, non-root, under %g MB compressed (as pulled)\n", checked, strings.Join(wantPlatforms, " and "), *maxMB)
	return nil
}

// check fetches ref's index from the registry, checks each platform's image
// and, when lp is set, appends the index to that layout.
func check(w io.Writer, lp layout.Path, ref, owner string, limit int64) ([]string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	idx, err := remote.Index(r) // anonymous: the loopback registry asks for nothing
	if err != nil {
		return nil, fmt.Errorf("not an image index in the registry (single-platform build?): %w", err)
	}
	fails, err := checkIndex(w, idx, owner, limit)
	if err != nil || lp == "" {
		return fails, err
	}
	return fails, lp.AppendIndex(idx)
}

func checkIndex(w io.Writer, idx v1.ImageIndex, name string, limit int64) ([]string, error) {
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
type image struct{ ref, owner string }

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
			if digestRef.MatchString(ref) {
				out = append(out, image{ref: ref, owner: owner})
			}
		})
	}
}

var digestRef = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)

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
