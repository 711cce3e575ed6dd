using Lb.Host.Stats;
using Lb.Rules;

namespace Lb.Host.Forwarding;

/// <summary>The runtime state of one backend server: health, active requests, its connection limit, counters.</summary>
public sealed class ServerRuntime
{
    private HealthState _health;
    private int _active;
    private readonly SemaphoreSlim? _slots;
    private AdminState _admin = AdminState.Ready;

    /// <param name="pinnedWindow">How long a client counts as pinned after its last request (`[stats] pinned_window`).</param>
    public ServerRuntime(AppConfig app, int index, TimeSpan? pinnedWindow = null)
    {
        Counters = new ServerCounters(pinnedWindow ?? TimeSpan.FromMinutes(5));
        Config = app.Servers[index];
        Index = index;
        AppName = app.Name;
        // HAProxy's default: a server starts up and the first failed check takes it down (Health.initial).
        _health = Lb.Rules.Health.Initial(app.Health.Thresholds, true);
        if (Config.MaxConn is { } max)
            _slots = new SemaphoreSlim(max.Value, max.Value);
    }

    public ServerConfig Config { get; }
    public int Index { get; }
    public string AppName { get; }
    public string Name => Config.Name;
    public HealthState Health => Volatile.Read(ref _health);
    public bool IsUp => Rules.Health.IsUp(Health);
    public int Active => Volatile.Read(ref _active);
    public DateTimeOffset LastChange { get; private set; } = DateTimeOffset.UtcNow;

    /// <summary>Sessions, bytes, responses, persistence and check counters for the stats page and metrics.</summary>
    public ServerCounters Counters { get; }

    /// <summary>What an operator set from the stats page: Ready, Drain (with an optional deadline) or Maint.</summary>
    public AdminState Admin => Volatile.Read(ref _admin);

    /// <summary>UP, DOWN, DRAIN or MAINT, as the stats page shows it (<see cref="Lb.Rules.Admin.Status"/>).</summary>
    public ServerStatus Status => Lb.Rules.Admin.Status(IsUp, Admin);

    /// <summary>Whether a client without a valid cookie may be sent here (health up and admin Ready).</summary>
    public bool UsableForNew => Lb.Rules.Admin.UsableForNew(IsUp, Admin);

    /// <summary>A server at its `maxconn` takes no new client while another has a free slot (HAProxy's fwrr skips it).</summary>
    public bool HasFreeSlot => _slots is null || _slots.CurrentCount > 0;

    /// <summary>Whether a client pinned here by its cookie stays (not in MAINT, drain deadline not passed).</summary>
    public bool UsableForPinned(DateTimeOffset now) => Lb.Rules.Admin.UsableForPinned(IsUp, Admin, now);

    /// <summary>Sets the admin state; takes effect on the next request.</summary>
    public void SetAdmin(AdminState state, DateTimeOffset now)
    {
        Volatile.Write(ref _admin, state);
        LastChange = now;
    }
    public string LastCheck { get; private set; } = "none yet";

    /// <summary>Applies one check result through the pure rise/fall counter; returns the transition, if any.</summary>
    public HealthTransition? RecordCheck(bool success, string detail, DateTimeOffset now) =>
        RecordCheck(success, detail, now, null, TimeSpan.Zero);

    /// <summary>As above, with the answered status (if any) and how long the check took, for the stats page.</summary>
    public HealthTransition? RecordCheck(bool success, string detail, DateTimeOffset now, int? status, TimeSpan duration)
    {
        Counters.Check(new CheckResult(success, status is { } s ? Microsoft.FSharp.Core.FSharpOption<int>.Some(s) : null, duration, detail, now));
        var (next, transition) = Rules.Health.Step(Health, success);
        Volatile.Write(ref _health, next);
        LastCheck = detail;
        if (transition is null)
            return null;
        LastChange = now;
        return transition.Value;
    }

    /// <summary>Waits for a connection slot (`maxconn`) up to the queue timeout; false when none came.</summary>
    public async ValueTask<bool> EnterAsync(TimeSpan queueTimeout, CancellationToken cancel)
    {
        if (_slots is not null && !_slots.Wait(0))
        {
            // No free slot: the request waits in this server's queue (HAProxy's per-server `qcur`).
            Counters.QueueEntered();
            try
            {
                if (!await _slots.WaitAsync(queueTimeout, cancel))
                    return false;
            }
            finally
            {
                Counters.QueueLeft();
            }
        }
        Counters.SessionStarted(Interlocked.Increment(ref _active));
        return true;
    }

    public void Leave()
    {
        Interlocked.Decrement(ref _active);
        _slots?.Release();
    }
}
