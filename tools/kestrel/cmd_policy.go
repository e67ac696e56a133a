package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kestrelnet/kestrel/agent/policy"
)

func init() {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Validate and explain NetworkPolicy and CiliumNetworkPolicy files",
	}
	cmd.AddCommand(newPolicyValidateCmd(), newPolicyExplainCmd())
	rootCmd.AddCommand(cmd)
}

func newPolicyValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Parse policy files strictly and report errors with their field path",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			failed := 0
			for _, f := range args {
				objs, err := policy.ParseFile(f)
				if err != nil {
					failed++
					fmt.Fprintf(out, "%v\n", err)
					continue
				}
				n := 0
				for i := range objs {
					if objs[i].IsPolicy() {
						n++
					}
				}
				fmt.Fprintf(out, "%s: OK (%d policies)\n", f, n)
				for i := range objs {
					if !objs[i].IsPolicy() {
						fmt.Fprintf(out, "  ignored: %s/%s\n", objs[i].Kind, objs[i].Name)
					}
					for _, w := range policy.Warnings(&objs[i]) {
						fmt.Fprintf(out, "  warning: %s\n", w)
					}
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d files failed validation", failed, len(args))
			}
			return nil
		},
	}
}

type explainFlags struct {
	pod, ip, serviceAccount, cluster string
	labels, nsLabels                 []string
	ipcache                          bool
}

func newPolicyExplainCmd() *cobra.Command {
	var fl explainFlags
	cmd := &cobra.Command{
		Use:   "explain --pod NS/NAME [--labels k=v,...] [--namespace-labels k=v,...] FILE...",
		Short: "Show one pod's identity, enforcement and policy map state",
		Long: "Namespace and Pod objects in the given files describe the cluster. A pod named by\n" +
			"--pod that is not in the files is added from --labels, --namespace-labels,\n" +
			"--service-account and --ip; --labels also overrides the labels of a pod from the files.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExplain(cmd.OutOrStdout(), fl, args, cmd.Flags().Changed("labels"))
		},
	}
	cmd.Flags().StringVar(&fl.pod, "pod", "", "the endpoint to explain, as namespace/name")
	cmd.Flags().StringSliceVar(&fl.labels, "labels", nil, "pod labels k=v,...")
	cmd.Flags().StringSliceVar(&fl.nsLabels, "namespace-labels", nil, "labels of the pod's namespace k=v,...")
	cmd.Flags().StringVar(&fl.serviceAccount, "service-account", "", "the pod's service account (default \"default\")")
	cmd.Flags().StringVar(&fl.ip, "ip", "", "the pod's IP address")
	cmd.Flags().StringVar(&fl.cluster, "cluster", "", "the cluster name (default \"default\")")
	cmd.Flags().BoolVar(&fl.ipcache, "ipcache", false, "also print the ipcache (prefix -> identity)")
	_ = cmd.MarkFlagRequired("pod")
	return cmd
}

func parseKV(pairs []string, what string) (map[string]string, error) {
	m := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s: %q is not key=value", what, p)
		}
		m[k] = v
	}
	return m, nil
}

func runExplain(w io.Writer, fl explainFlags, files []string, labelsSet bool) error {
	nsName, podName, ok := strings.Cut(fl.pod, "/")
	if !ok || nsName == "" || podName == "" {
		return fmt.Errorf("--pod: want namespace/name, got %q", fl.pod)
	}
	podLabels, err := parseKV(fl.labels, "labels")
	if err != nil {
		return err
	}
	nsLabels, err := parseKV(fl.nsLabels, "namespace-labels")
	if err != nil {
		return err
	}
	in := policy.Input{ClusterName: fl.cluster}
	var ignored []string
	for _, f := range files {
		objs, err := policy.ParseFile(f)
		if err != nil {
			return err
		}
		for i := range objs {
			o := &objs[i]
			switch {
			case o.IsPolicy():
				in.Policies = append(in.Policies, *o)
			case o.Kind == "Namespace":
				ns := &corev1.Namespace{}
				if err := json.Unmarshal(o.Raw, ns); err != nil {
					return fmt.Errorf("%s: Namespace: %v", o.Source, err)
				}
				in.Namespaces = append(in.Namespaces, ns)
			case o.Kind == "Pod":
				p := &corev1.Pod{}
				if err := json.Unmarshal(o.Raw, p); err != nil {
					return fmt.Errorf("%s: Pod: %v", o.Source, err)
				}
				if p.Namespace == "" {
					p.Namespace = "default"
				}
				in.Pods = append(in.Pods, p)
			default:
				ignored = append(ignored, o.Kind+"/"+o.Name)
			}
		}
	}
	var target *corev1.Pod
	for _, p := range in.Pods {
		if p.Namespace == nsName && p.Name == podName {
			target = p
		}
	}
	if target == nil {
		target = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: nsName, Name: podName}}
		in.Pods = append(in.Pods, target)
	}
	if labelsSet {
		target.Labels = podLabels
	}
	if fl.serviceAccount != "" {
		target.Spec.ServiceAccountName = fl.serviceAccount
	}
	if fl.ip != "" {
		target.Status.PodIPs = []corev1.PodIP{{IP: fl.ip}}
	}
	var nsObj *corev1.Namespace
	for _, ns := range in.Namespaces {
		if ns.Name == nsName {
			nsObj = ns
		}
	}
	if nsObj == nil {
		nsObj = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName}}
		in.Namespaces = append(in.Namespaces, nsObj)
	}
	if len(nsLabels) > 0 {
		nsObj.Labels = nsLabels
	}
	res, err := policy.Resolve(in)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%d policies, %d pods, %d namespaces from %d files\n", len(in.Policies), len(in.Pods), len(in.Namespaces), len(files))
	if len(ignored) > 0 {
		fmt.Fprintf(w, "ignored: %s\n", strings.Join(ignored, ", "))
	}
	if err := res.Explain(w, fl.pod); err != nil {
		return err
	}
	if fl.ipcache {
		fmt.Fprintln(w, "ipcache:")
		for _, e := range res.IPCache {
			fmt.Fprintf(w, "  %-20s %s\n", e.Prefix, res.DescribeIdentity(e.Identity))
		}
	}
	return nil
}
