// Command koregistry serves a container registry on loopback for as long as
// one command runs, and points KO_DOCKER_REPO at it:
//
//	koregistry -blobs DIR [-repo taskfn] -- ko resolve ...
//
// make images needs it because ko resolve --oci-layout-path appends each
// image to the layout's index.json from its concurrent publishes with no
// lock (ko v0.19.1, publish.LayoutPublisher): two publishes at once read a
// half-written index.json ("unexpected end of JSON input") or lose an entry.
// A registry takes concurrent pushes by design, and pushing is what ko does
// in production. Loopback registries are spoken to over plain HTTP by ko
// (go-containerregistry's name package), so nothing needs TLS. Blobs go to
// DIR rather than memory: a hundred images are a few hundred MB.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	code, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "koregistry:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// run returns the command's exit code, or an error of its own.
func run(args []string) (int, error) {
	fs := flag.NewFlagSet("koregistry", flag.ContinueOnError)
	blobs := fs.String("blobs", "", "directory for the registry's blobs")
	repo := fs.String("repo", "taskfn", "repository under the registry that KO_DOCKER_REPO names")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if *blobs == "" || fs.NArg() == 0 {
		return 2, errors.New("usage: koregistry -blobs DIR [-repo NAME] -- COMMAND [ARG...]")
	}
	if err := os.MkdirAll(*blobs, 0o755); err != nil {
		return 1, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 1, err
	}
	srv := &http.Server{Handler: registry.New(
		registry.WithBlobHandler(registry.NewDiskBlobHandler(*blobs)),
		registry.Logger(log.New(io.Discard, "", 0)), // one line per request otherwise
	)}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "KO_DOCKER_REPO="+ln.Addr().String()+"/"+*repo)
	if err := cmd.Start(); err != nil {
		return 1, err
	}
	// An interrupt reaches the child through the terminal's process group;
	// staying alive until it exits keeps the registry up for its last pushes.
	// (Notify, not Ignore: an ignored signal would stay ignored in the child.)
	signal.Notify(make(chan os.Signal, 1), os.Interrupt, syscall.SIGTERM)
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, err
}
