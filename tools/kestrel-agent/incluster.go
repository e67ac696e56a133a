package main

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// restConfig is the kubeconfig's cluster, or, without one, the cluster the agent
// runs in as a pod (its service account, KUBERNETES_SERVICE_HOST/PORT).
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --kubeconfig and not in a pod: %w", err)
		}
		return rc, nil
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig: %w", err)
	}
	return rc, nil
}

// fromEnv fills an empty flag from the environment, where a DaemonSet puts the
// downward API's values (NODE_NAME: spec.nodeName, NODE_IP: status.hostIP).
func fromEnv(v *string, env string) {
	if *v == "" {
		*v = os.Getenv(env)
	}
}

// handlerFuncs calls f on every add, update and delete.
func handlerFuncs(f func(any)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    f,
		UpdateFunc: func(_, n any) { f(n) },
		DeleteFunc: f,
	}
}
