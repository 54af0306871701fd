package driver

import (
	"context"

	"google.golang.org/grpc"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// registrationServer serves kubelet's plugin registration API on
// <registration-dir>/<driver-name>-reg.sock, so no node-driver-registrar
// sidecar is needed.
type registrationServer struct {
	registerapi.UnimplementedRegistrationServer
	d *Driver
}

func registerRegistration(s *grpc.Server, d *Driver) {
	registerapi.RegisterRegistrationServer(s, &registrationServer{d: d})
}

// GetInfo implements registerapi.RegistrationServer.
func (r *registrationServer) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              r.d.cfg.Name,
		Endpoint:          r.d.socketPath,
		SupportedVersions: []string{"1.0.0"},
	}, nil
}

// NotifyRegistrationStatus implements registerapi.RegistrationServer.
func (r *registrationServer) NotifyRegistrationStatus(_ context.Context, st *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	if st.GetPluginRegistered() {
		r.d.log.Printf("kubelet registered plugin %s", r.d.cfg.Name)
	} else {
		r.d.log.Printf("ERROR: kubelet failed to register plugin %s: %s", r.d.cfg.Name, st.GetError())
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}
