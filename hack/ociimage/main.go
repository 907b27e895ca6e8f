// Command ociimage writes a container image as an OCI image archive: one
// layer holding the files it is given, with no base image, no registry and
// no Docker daemon. hack/image.sh uses it to put the static tokend binary
// into an image that runs as the Dockerfile's user:
//
//	go run ./hack/ociimage -o tokend-image.tar -name ghcr.io/ambient-code/tokend:dev \
//	    -add bin/tokend:/tokend -entrypoint /tokend -cmd run
//
// The archive is an OCI image layout (oci-layout, index.json, blobs) in a
// tar file, with a Docker-style manifest.json beside it, so that each of
// these loads it:
//
//	ctr -n k8s.io images import tokend-image.tar    (containerd; kind, k3s)
//	podman load -i tokend-image.tar
//	docker load -i tokend-image.tar
//	skopeo copy oci-archive:tokend-image.tar docker://REGISTRY/tokend:TAG
//
// The layer holds, besides the files added: /etc/passwd and /etc/group
// naming root and the image's user ("nonroot", as on distroless), that
// user's home /home/nonroot, and /tmp. Every file is owned by root, with
// the permission bits of its source; every time stamp is -created. The same
// inputs give the same archive, byte for byte.
//
// Flags:
//
//	-o FILE              the archive to write (required); replaced atomically
//	-name REF            the image's name, REPOSITORY[:TAG] (default ghcr.io/ambient-code/tokend:latest)
//	-add SRC:DST         put the regular file SRC at the absolute path DST (repeatable)
//	-symlink LINK:TARGET make LINK, an absolute path, a symbolic link to TARGET (repeatable)
//	-entrypoint ARG      one element of the entrypoint (repeatable, in order)
//	-cmd ARG             one element of the default arguments (repeatable, in order)
//	-env KEY=VALUE       an environment variable (repeatable); PATH is set unless given
//	-user UID:GID        the numeric user and group to run as (default 65532:65532, non-root)
//	-platform OS/ARCH    default: read from the first ELF executable added
//	-created TIME        RFC 3339; default SOURCE_DATE_EPOCH, else the Unix epoch
//
// An ELF executable that needs a program interpreter (a dynamically linked
// one) is refused: the image has no C library. Exit status: 0 when the
// archive is written, 1 when it cannot be, 2 for a usage error.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// errUsage marks an error in the command line: exit status 2.
var errUsage = errors.New("usage")

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parse(args, getenv, stderr)
	if err == nil {
		err = checkOutDir(cfg.out)
	}
	if err == nil {
		var img *image
		if img, err = build(cfg); err == nil {
			err = writeArchive(cfg.out, img)
		}
		if err == nil {
			fmt.Fprintf(stdout, "wrote %s: %s %s, manifest %s, layer %d bytes, archive %d bytes\n",
				cfg.out, cfg.name, cfg.platform, img.manifest.digest, len(img.layer.data), img.archiveSize)
			return 0
		}
	}
	fmt.Fprintf(stderr, "ociimage: %v\n", err)
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// checkOutDir fails early, before the layer is built, when -o cannot be
// written in its directory.
func checkOutDir(out string) error {
	dir := filepath.Dir(out)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("-o %s: directory %s does not exist: create it, or write the archive elsewhere", out, dir)
	}
	return nil
}
