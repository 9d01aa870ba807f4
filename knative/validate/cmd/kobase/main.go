// Command kobase assembles the base image ko builds on where no registry can
// be reached (this project's CI): CA certificates, a passwd with the nonroot
// user 65532 and nothing else, as an OCI image index for linux/amd64 and
// linux/arm64. It appends the index to an OCI layout — ko's base-image cache
// at $KOCACHE/img by default, which ko reads before any registry when the
// base is named by digest — and prints that name@digest for
// KO_DEFAULTBASEIMAGE.
//
// The result mirrors the production base in ko.yaml (distroless
// static:nonroot): same user, same certificate path, no shell.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// nonroot is the uid and gid images run as, distroless's "nonroot".
const nonroot = 65532

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kobase:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("kobase", flag.ContinueOnError)
	defLayout := ""
	if kc := os.Getenv("KOCACHE"); kc != "" {
		defLayout = filepath.Join(kc, "img")
	}
	layoutDir := fs.String("layout", defLayout, "OCI layout to append the base to (default $KOCACHE/img)")
	certs := fs.String("certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to ship")
	name := fs.String("name", "taskfn.invalid/base", "repository part of the printed reference; never contacted")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *layoutDir == "" {
		return errors.New("no -layout and no KOCACHE")
	}
	bundle, err := os.ReadFile(*certs)
	if err != nil {
		return err
	}
	idx, err := baseIndex(bundle, epoch())
	if err != nil {
		return err
	}
	if err := appendOnce(*layoutDir, idx); err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s@%s\n", *name, d)
	return err
}

// epoch is the timestamp of every file and of the image: SOURCE_DATE_EPOCH
// when set, else 1970, so the same inputs give the same digest.
func epoch() time.Time {
	if s, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		return time.Unix(s, 0).UTC()
	}
	return time.Unix(0, 0).UTC()
}

// baseIndex builds the two single-platform images (same layer, different
// config) and the index over them.
func baseIndex(bundle []byte, at time.Time) (v1.ImageIndex, error) {
	files, err := rootfs(bundle, at)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(files)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range []v1.Platform{
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm64", Variant: "v8"},
	} {
		img, err := platformImage(layer, p, at)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	return idx, nil
}

func platformImage(layer v1.Layer, p v1.Platform, at time.Time) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: at}, CreatedBy: "taskfn kobase: CA certificates, nonroot user"},
	})
	if err != nil {
		return nil, err
	}
	// Start from the config Append produced: it holds the layer's diff id.
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: at}
	cf.Config = v1.Config{
		User:       strconv.Itoa(nonroot),
		WorkingDir: "/home/nonroot",
		Env: []string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		},
	}
	return mutate.ConfigFile(img, cf)
}

// rootfs is the layer: a tar with fixed owners and times, entries in a
// fixed order, so its digest depends on the CA bundle alone.
func rootfs(bundle []byte, at time.Time) ([]byte, error) {
	type entry struct {
		name     string
		mode     int64
		uid      int
		contents string
		dir      bool
	}
	entries := []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, contents: "root:x:0:\nnonroot:x:65532:\n"},
		// Go's resolver reads nsswitch.conf to decide between /etc/hosts and DNS.
		{name: "etc/nsswitch.conf", mode: 0o644, contents: "hosts: files dns\n"},
		{name: "etc/passwd", mode: 0o644, contents: "root:x:0:0:root:/root:/sbin/nologin\n" +
			"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, contents: string(bundle)},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, uid: nonroot, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.uid,
			ModTime: at,
			Format:  tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.contents))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, e.contents); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// appendOnce adds idx and each of its images to the layout at dir (created
// if missing), skipping what an earlier run already added: index.json would
// otherwise grow on every build. The images are listed at the top level too
// because ko's cache looks a digest up there only, not inside indexes.
func appendOnce(dir string, idx v1.ImageIndex) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return err
		}
	}
	have, err := p.ImageIndex()
	if err != nil {
		return err
	}
	hm, err := have.IndexManifest()
	if err != nil {
		return err
	}
	listed := map[v1.Hash]bool{}
	for _, d := range hm.Manifests {
		listed[d.Digest] = true
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range m.Manifests {
		if listed[d.Digest] {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return err
		}
		if err := p.AppendImage(img, layout.WithPlatform(*d.Platform)); err != nil {
			return err
		}
	}
	d, err := idx.Digest()
	if err != nil || listed[d] {
		return err
	}
	return p.AppendIndex(idx)
}
