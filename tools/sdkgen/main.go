// sdkgen writes the Python and Go SDKs of a Pulumi package schema with pkg/v3's own code generators, the code
// `pulumi package gen-sdk` and `pulumi package add` run inside the language plugins (pulumi-language-python and
// pulumi-language-go), which the Go module proxy here does not serve. The options are the ones `package add`
// sets (SupportPack, a local package), so the output is what a Pulumi user gets from `pulumi package add`.
//
//	sdkgen -schema plugin/schema.json -language python|go -out DIR
//
// Built by tools/pulumi/build.ts against the same pkg/v3 version as the CLI.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/blang/semver"
	gogen "github.com/pulumi/pulumi/pkg/v3/codegen/go"
	pygen "github.com/pulumi/pulumi/pkg/v3/codegen/python"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

const tool = "pulumi-rootless-docker sdkgen"

// noReferences refuses every package reference: the schema is self-contained, so a reference to another
// package is a mistake in it, said as such instead of a plugin download.
type noReferences struct{}

func (noReferences) refuse(name string) error {
	return fmt.Errorf("the schema refers to package %q; sdkgen only generates self-contained schemas", name)
}
func (l noReferences) LoadPackage(name string, _ *semver.Version) (*schema.Package, error) {
	return nil, l.refuse(name)
}
func (l noReferences) LoadPackageV2(_ context.Context, d *schema.PackageDescriptor) (*schema.Package, error) {
	return nil, l.refuse(d.Name)
}
func (l noReferences) LoadPackageReference(name string, _ *semver.Version) (schema.PackageReference, error) {
	return nil, l.refuse(name)
}
func (l noReferences) LoadPackageReferenceV2(_ context.Context, d *schema.PackageDescriptor) (schema.PackageReference, error) {
	return nil, l.refuse(d.Name)
}

func generate(schemaPath, language, out string) error {
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		return err
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fmt.Errorf("%s: %w", schemaPath, err)
	}
	pkg, diags, err := schema.BindSpec(spec, noReferences{}, schema.ValidationOptions{})
	if err != nil {
		return err
	}
	if diags.HasErrors() {
		return fmt.Errorf("%s does not bind: %w", schemaPath, diags)
	}
	// What `pulumi package add` sets: a package with its own project file (pyproject.toml, go.mod) at the
	// schema's version.
	pkg.SupportPack = true

	var files map[string][]byte
	switch language {
	case "python":
		files, err = pygen.GeneratePackage(tool, pkg, nil, noReferences{})
	case "go":
		files, err = gogen.GeneratePackage(tool, pkg, nil)
	default:
		return fmt.Errorf("language %q: only python and go", language)
	}
	if err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		target := filepath.Join(out, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(target, files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	schemaPath := flag.String("schema", "", "the package schema (JSON)")
	language := flag.String("language", "", "python or go")
	out := flag.String("out", "", "the SDK's folder (replaced)")
	flag.Parse()
	if *schemaPath == "" || *language == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := generate(*schemaPath, *language, *out); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w (npm run build writes plugin/schema.json)", err)
		}
		fmt.Fprintf(os.Stderr, "sdkgen: %s: %v\n", *language, err)
		os.Exit(1)
	}
}
