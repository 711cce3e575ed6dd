using System.Net;

namespace Lb.Vrrp.Tests;

/// <summary>One router on the simulated medium: its state machine and what it has done.</summary>
public sealed class SimRouter(string name, ElectionConfig config)
{
    public string Name { get; } = name;
    public StateMachine Machine { get; } = new(config);
    public VrrpState State { get; set; } = new StateMachine(config).Initial;
    public bool Alive { get; set; } = true;
    public bool HoldsVip { get; set; }
    public List<(TimeSpan At, byte Priority)> Adverts { get; } = [];
    public List<TimeSpan> Garps { get; } = [];
    public List<(TimeSpan At, VrrpAction.Transition T)> Transitions { get; } = [];
    public IPAddress Address => Machine.Config.LocalAddress;
    public TimeSpan? BecameMasterAt(TimeSpan after) =>
        Transitions.Where(t => t.At >= after && t.T.To == VrrpRole.Master).Select(t => (TimeSpan?)t.At).FirstOrDefault();
    public override string ToString() => $"{Name}({State.Priority}) {State.Role}";
}

/// <summary>
/// A simulated multicast LAN with a simulated clock: every advert reaches every other live router after
/// <see cref="Latency"/>. Time jumps from one event to the next; every run is bounded in steps.
/// </summary>
public sealed class Medium(TimeSpan latency)
{
    public TimeSpan Now { get; private set; }
    public TimeSpan Latency { get; } = latency;
    public List<SimRouter> Routers { get; } = [];
    /// <summary>Total simulated time during which no router held the VIPs, after the first master.</summary>
    public TimeSpan VipGap { get; private set; }
    readonly PriorityQueue<(SimRouter To, VrrpEvent Ev), (TimeSpan, long)> pending = new();
    long seq;
    bool everHeld;

    public SimRouter Add(string name, ElectionConfig config)
    {
        var r = new SimRouter(name, config);
        Routers.Add(r);
        return r;
    }

    public void At(TimeSpan t, SimRouter r, VrrpEvent ev) => pending.Enqueue((r, ev), (t, seq++));

    public void Apply(SimRouter r, VrrpEvent ev)
    {
        if (!r.Alive) return;
        var result = r.Machine.Step(r.State, ev, Now);
        r.State = result.State;
        foreach (var a in result.Actions) Perform(r, a);
    }

    void Perform(SimRouter r, VrrpAction a)
    {
        switch (a)
        {
            case VrrpAction.SendAdvert s:
                r.Adverts.Add((Now, s.Priority));
                foreach (var other in Routers.Where(o => o != r))
                    At(Now + Latency, other, new VrrpEvent.AdvertReceived(s.Priority, r.Machine.Config.AdvertInterval, r.Address));
                break;
            case VrrpAction.AddVips: r.HoldsVip = true; everHeld = true; break;
            case VrrpAction.RemoveVips: r.HoldsVip = false; break;
            case VrrpAction.SendGarp: r.Garps.Add(Now); break;
            case VrrpAction.Transition t: r.Transitions.Add((Now, t)); break;
        }
    }

    public void Kill(SimRouter r) => r.Alive = false;

    /// <summary>Runs until <paramref name="end"/>; fails if more than 100 000 events were needed.</summary>
    public void RunUntil(TimeSpan end)
    {
        for (int steps = 0; steps < 100_000; steps++)
        {
            var next = NextEventTime();
            if (next is not { } t || t > end) { Advance(end); return; }
            Advance(t);
            while (pending.TryPeek(out var p, out var when) && when.Item1 <= Now)
            {
                pending.Dequeue();
                Apply(p.To, p.Ev);
            }
            foreach (var r in Routers.Where(r => r.Alive && r.State.NextDeadline <= Now))
                Apply(r, new VrrpEvent.Tick());
        }
        throw new InvalidOperationException("simulation did not settle within 100 000 steps");
    }

    TimeSpan? NextEventTime()
    {
        var deadlines = Routers.Where(r => r.Alive).Select(r => r.State.NextDeadline);
        if (pending.TryPeek(out _, out var p)) deadlines = deadlines.Append(p.Item1);
        return deadlines.Where(d => d.HasValue).Min();
    }

    void Advance(TimeSpan t)
    {
        if (everHeld && !Routers.Any(r => r.HoldsVip && r.Alive)) VipGap += t - Now;
        Now = t;
    }

    public IEnumerable<SimRouter> Masters => Routers.Where(r => r.Alive && r.State.Role == VrrpRole.Master);
    public IEnumerable<SimRouter> VipHolders => Routers.Where(r => r.Alive && r.HoldsVip);

    public static IPAddress Address(int i) => IPAddress.Parse($"192.0.2.{11 + i}");
}
