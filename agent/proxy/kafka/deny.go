package kafkaproxy

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrorCodeFor is the error a denied request is answered with: a topic's
// authorization error for requests about topics, a group's for group
// membership requests (as Cilium's Kafka proxy answers them).
func ErrorCodeFor(key int16) int16 {
	switch key {
	case 10, 11, 12, 13, 14: // findcoordinator, joingroup, heartbeat, leavegroup, syncgroup
		return kerr.GroupAuthorizationFailed.Code
	}
	return kerr.TopicAuthorizationFailed.Code
}

// denial is the response frame a denied request gets: req's own response
// kind at its version and correlation ID, with the authorization error on
// every topic and partition it names (or on the response, for group
// requests). ok is false when the request has no response to give (a
// produce with acks 0) or none Kestrel can build (a kind it cannot read):
// the proxy then says nothing, or closes the connection.
func denial(req *Request) (frame []byte, respond bool, ok bool) {
	if req.Msg == nil {
		return nil, false, false
	}
	code := ErrorCodeFor(req.Key)
	var resp kmsg.Response
	switch m := req.Msg.(type) {
	case *kmsg.ProduceRequest:
		if m.Acks == 0 {
			return nil, false, true
		}
		r := kmsg.NewPtrProduceResponse()
		for _, t := range m.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
		resp = r
	case *kmsg.FetchRequest:
		r := kmsg.NewPtrFetchResponse()
		r.SessionID = m.SessionID
		for _, t := range m.Topics {
			rt := kmsg.NewFetchResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
		resp = r
	case *kmsg.ListOffsetsRequest:
		r := kmsg.NewPtrListOffsetsResponse()
		for _, t := range m.Topics {
			rt := kmsg.NewListOffsetsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewListOffsetsResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
		resp = r
	case *kmsg.MetadataRequest:
		r := kmsg.NewPtrMetadataResponse()
		for _, t := range m.Topics {
			rt := kmsg.NewMetadataResponseTopic()
			rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, code
			r.Topics = append(r.Topics, rt)
		}
		resp = r
	case *kmsg.OffsetCommitRequest:
		r := kmsg.NewPtrOffsetCommitResponse()
		for _, t := range m.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
		resp = r
	case *kmsg.OffsetFetchRequest:
		r := kmsg.NewPtrOffsetFetchResponse()
		r.ErrorCode = code
		for _, t := range m.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			r.Topics = append(r.Topics, rt)
		}
		for _, g := range m.Groups {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, code
			for _, t := range g.Topics {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic, rt.TopicID = t.Topic, t.TopicID
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.ErrorCode = p, code
					rt.Partitions = append(rt.Partitions, rp)
				}
				rg.Topics = append(rg.Topics, rt)
			}
			r.Groups = append(r.Groups, rg)
		}
		resp = r
	case *kmsg.FindCoordinatorRequest:
		r := kmsg.NewPtrFindCoordinatorResponse()
		r.ErrorCode, r.NodeID = code, -1
		for _, k := range m.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			c.Key, c.NodeID, c.ErrorCode = k, -1, code
			r.Coordinators = append(r.Coordinators, c)
		}
		resp = r
	case *kmsg.JoinGroupRequest:
		r := kmsg.NewPtrJoinGroupResponse()
		r.ErrorCode = code
		resp = r
	case *kmsg.HeartbeatRequest:
		r := kmsg.NewPtrHeartbeatResponse()
		r.ErrorCode = code
		resp = r
	case *kmsg.LeaveGroupRequest:
		r := kmsg.NewPtrLeaveGroupResponse()
		r.ErrorCode = code
		resp = r
	case *kmsg.SyncGroupRequest:
		r := kmsg.NewPtrSyncGroupResponse()
		r.ErrorCode = code
		resp = r
	case *kmsg.CreateTopicsRequest:
		r := kmsg.NewPtrCreateTopicsResponse()
		for _, t := range m.Topics {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = t.Topic, code
			r.Topics = append(r.Topics, rt)
		}
		resp = r
	case *kmsg.DeleteTopicsRequest:
		r := kmsg.NewPtrDeleteTopicsResponse()
		for _, n := range m.TopicNames {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = kmsg.StringPtr(n), code
			r.Topics = append(r.Topics, rt)
		}
		for _, t := range m.Topics {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.TopicID, rt.ErrorCode = t.Topic, t.TopicID, code
			r.Topics = append(r.Topics, rt)
		}
		resp = r
	default:
		return nil, false, false
	}
	resp.SetVersion(req.Version)
	buf := make([]byte, 8, 64) // size, correlation ID
	// Every flexible response has a tagged header but ApiVersions'.
	if resp.IsFlexible() && resp.Key() != 18 {
		buf = append(buf, 0)
	}
	buf = resp.AppendTo(buf)
	binary.BigEndian.PutUint32(buf[:4], uint32(len(buf)-4))
	binary.BigEndian.PutUint32(buf[4:8], uint32(req.Correlation))
	return buf, true, true
}
