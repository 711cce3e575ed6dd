using System.Net;
using FsCheck;
using FsCheck.Fluent;

namespace Lb.Vrrp.Tests;

/// <summary>A packet together with the IP source/destination it travels with (v3's checksum needs them).</summary>
public sealed record Wire(VrrpPacket Packet, IPAddress Source, IPAddress Destination)
{
    public override string ToString() => $"{Packet} {Source} > {Destination}";
}

/// <summary>A mutation of a real packet: flip <see cref="Mask"/> into byte <see cref="Offset"/>, cut to <see cref="Cut"/>.</summary>
public sealed record Mutation(int Offset, byte Mask, int Cut);

/// <summary>All FsCheck generators in one place (STYLE rule 9).</summary>
public static class Generators
{
    static Gen<byte> Byte => Gen.Choose(0, 255).Select(i => (byte)i);

    public static Gen<IPAddress> IPv4 => Byte.ArrayOf(4).Select(b => new IPAddress(b));
    public static Gen<IPAddress> IPv6 => Byte.ArrayOf(16).Select(b => new IPAddress(b));

    static Gen<IPAddress[]> Addresses(Gen<IPAddress> one) =>
        Gen.Choose(0, 20).SelectMany(n => one.ArrayOf(n));

    public static Gen<Wire> V2 =>
        from vrid in Gen.Choose(1, 255)
        from prio in Byte
        from interval in Gen.Choose(1, 255)
        from addrs in Addresses(IPv4)
        from auth in Gen.Elements(AuthType.None, AuthType.SimpleText, AuthType.IpAh)
        from data in Byte.ArrayOf(8)
        from src in IPv4
        select new Wire(VrrpPacket.V2((byte)vrid, prio, (byte)interval, addrs, auth, data), src, IPAddress.Parse("224.0.0.18"));

    public static Gen<Wire> V3 =>
        from v6 in Gen.Elements(false, true)
        from vrid in Gen.Choose(1, 255)
        from prio in Byte
        from interval in Gen.Choose(1, VrrpCodec.MaxV3Interval)
        from addrs in Addresses(v6 ? IPv6 : IPv4)
        from src in v6 ? IPv6 : IPv4
        from dst in v6 ? IPv6 : IPv4
        select new Wire(VrrpPacket.V3((byte)vrid, prio, (ushort)interval, addrs), src, dst);

    public static Arbitrary<Wire> Wire() => Arb.From(Gen.OneOf(V2, V3));

    public static Arbitrary<Mutation> Mutation() => Arb.From(
        from offset in Gen.Choose(0, 63)
        from mask in Gen.Choose(1, 255)
        from cut in Gen.Choose(0, 80)
        select new Mutation(offset, (byte)mask, cut));
}

/// <summary>2–3 routers of one virtual router: priorities, start offsets, preempt mode, version.</summary>
public sealed record Fleet(byte[] Priorities, int[] StartMs, bool Preempt, VrrpVersion Version)
{
    public override string ToString() =>
        $"prio [{string.Join(",", Priorities)}] start [{string.Join(",", StartMs)}] preempt {Preempt} {Version}";
}

public static class FleetGenerators
{
    public static Arbitrary<Fleet> Fleet() => Arb.From(
        from n in Gen.Choose(2, 3)
        from prios in Gen.Choose(1, 254).ArrayOf(n)
        from starts in Gen.Choose(0, 5000).ArrayOf(n)
        from preempt in Gen.Elements(true, false)
        from v in Gen.Elements(VrrpVersion.V2, VrrpVersion.V3)
        select new Fleet(prios.Select(p => (byte)p).ToArray(), starts, preempt, v));
}

/// <summary>2–3 planned nodes with distinct priorities, each with one tracked check, plus which failure to try.</summary>
public sealed record PlanCase(NodePlan[] Nodes, int FailureIndex)
{
    public override string ToString() =>
        string.Join("; ", Nodes.Select(n => $"{n.Name} {n.Priority} preempt={n.Preempt} check weight {n.Checks[0].Weight}")) + $"; failure #{FailureIndex}";
}

public static class PlanGenerators
{
    public static Arbitrary<PlanCase> PlanCase() => Arb.From(
        from n in Gen.Choose(2, 3)
        from prios in Gen.Shuffle(Enumerable.Range(1, 254).ToArray()).Select(p => p.Take(n).ToArray())
        from preempts in Gen.Elements(true, false).ArrayOf(n)
        from weights in Gen.Choose(-100, 100).ArrayOf(n)
        from failure in Gen.Choose(0, 100)
        select new PlanCase(Enumerable.Range(0, n).Select(i =>
            new NodePlan($"lb{i + 1}", (byte)prios[i], preempts[i], [], [new PlannedCheck("chk", weights[i])])).ToArray(), failure));
}
