package collector

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix prefixes the environment variables that override config keys:
// key receiver.http.endpoint is MCPWATCH_COLLECTOR_RECEIVER_HTTP_ENDPOINT.
const EnvPrefix = "MCPWATCH_COLLECTOR_"

// LoadConfig reads the YAML file at path ("" = none; unknown keys are
// errors), then applies environment overrides from environ (os.Environ()
// form) and then flag overrides (key → value, e.g. "kafka.brokers" →
// "a:9092,b:9092"), and returns the config with defaults applied. It does
// not validate; call Validate.
func LoadConfig(path string, environ []string, flags map[string]string) (Config, error) {
	var cfg Config
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("cannot read config file: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("cannot parse config file %s: %w", path, err)
		}
	}
	keys := settings(&cfg)
	var errs []error
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	known := map[string]bool{}
	for _, s := range keys {
		name := EnvName(s.key)
		known[name] = true
		if v, ok := env[name]; ok {
			if err := setValue(s.v, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	for k := range env {
		if !known[k] {
			errs = append(errs, fmt.Errorf("%s: no such config key", k))
		}
	}
	byKey := map[string]reflect.Value{}
	for _, s := range keys {
		byKey[s.key] = s.v
	}
	for k, v := range flags {
		f, ok := byKey[k]
		if !ok {
			errs = append(errs, fmt.Errorf("--%s: no such config key", k))
			continue
		}
		if err := setValue(f, v); err != nil {
			errs = append(errs, fmt.Errorf("--%s: %w", k, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}
	return cfg.WithDefaults(), nil
}

// ConfigKeys lists every key that env vars and flags can override, with
// its Go type, sorted.
func ConfigKeys() [][2]string {
	var cfg Config
	var out [][2]string
	for _, s := range settings(&cfg) {
		out = append(out, [2]string{s.key, s.v.Type().String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// EnvName is the environment variable for key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

type setting struct {
	key string
	v   reflect.Value
}

// settings walks cfg's yaml-tagged fields down to settable leaves. Lists of
// structs (receiver.auth.tokens) are file-only.
func settings(cfg *Config) []setting {
	var out []setting
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" || !f.IsExported() {
				continue
			}
			key := tag
			if prefix != "" {
				key = prefix + "." + tag
			}
			fv := v.Field(i)
			switch {
			case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Time{}):
				walk(fv, key)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				// file-only
			default:
				out = append(out, setting{key: key, v: fv})
			}
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), "")
	return out
}

var durationType = reflect.TypeOf(time.Duration(0))

// setValue parses s into v: strings, bools, numbers, durations, lists
// (comma-separated) and maps ("k=v,k2=v2").
func setValue(v reflect.Value, s string) error {
	if v.Kind() == reflect.Pointer {
		n := reflect.New(v.Type().Elem())
		if err := setValue(n.Elem(), s); err != nil {
			return err
		}
		v.Set(n)
		return nil
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("cannot parse duration %q: %w", s, err)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("cannot parse bool %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("cannot parse integer %q", s)
		}
		v.SetInt(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("cannot parse number %q", s)
		}
		v.SetFloat(n)
	case reflect.Slice:
		parts := splitList(s)
		sl := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		for i, p := range parts {
			if err := setValue(sl.Index(i), p); err != nil {
				return err
			}
		}
		v.Set(sl)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for _, p := range splitList(s) {
			k, val, ok := strings.Cut(p, "=")
			if !ok {
				return fmt.Errorf("cannot parse %q: want key=value", p)
			}
			ev := reflect.New(v.Type().Elem()).Elem()
			if err := setValue(ev, val); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(strings.TrimSpace(k)), ev)
		}
		v.Set(m)
	default:
		return fmt.Errorf("cannot set a %s from text", v.Type())
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
