using System.Runtime.CompilerServices;
using Lb.Host.Stats;
using Lb.Rules;

namespace Lb.Host.Forwarding;

/// <summary>The runtime state of one app: its servers and its balancing state. Choices are made by Rules.</summary>
public sealed class AppRuntime
{
    private RoundRobinState _roundRobin = Balancing.RoundRobinInitial;

    /// <summary>
    /// The round robin of each server group a rule pins to: a group keeps its own turn, as a change of the
    /// available set starts the round robin over (<see cref="Balancing.RoundRobin"/>), and pinned and unpinned
    /// requests interleaved would otherwise send every unpinned one to the first server.
    /// </summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, StrongBox<RoundRobinState>> _pinnedRoundRobins = new();
    private int _turn;
    private readonly int[] _weights;

    /// <param name="pinnedWindow">`[stats] pinned_window`, for the servers' pinned-client counts.</param>
    public AppRuntime(AppConfig config, TimeSpan? pinnedWindow = null)
        : this(config, config.Servers.Select((_, i) => new ServerRuntime(config, i, pinnedWindow)).ToArray(), new AppCounters())
    {
    }

    /// <summary>
    /// The app after a reload, as <paramref name="plan"/> says: carried servers keep <paramref name="previous"/>'s
    /// state, the others start fresh; the app's counters carry over. The balancer starts over, as its server set may differ.
    /// </summary>
    public AppRuntime(AppConfig config, TimeSpan? pinnedWindow, AppRuntime? previous, AppReload plan)
        : this(config, config.Servers.Select((_, i) => plan.Servers[i] is ServerOrigin.Carried carried && previous is not null
                ? new ServerRuntime(config, i, previous.Servers[carried.oldIndex])
                : new ServerRuntime(config, i, pinnedWindow)).ToArray(),
            previous?.Counters ?? new AppCounters())
    {
    }

    private AppRuntime(AppConfig config, ServerRuntime[] servers, AppCounters counters)
    {
        Config = config;
        Servers = servers;
        Counters = counters;
        _weights = config.Servers.Select(s => s.Weight).ToArray();
        if (Persistence.IsOn(config))
            _persistenceCookies = [CookiesOfServers(config, secure: false), CookiesOfServers(config, secure: true)];
    }

    /// <summary>
    /// Each server's Set-Cookie line, over http and over https: fixed by the config, so built once here rather
    /// than for every response that pins a client (<see cref="Persistence.SetCookieFor"/>).
    /// </summary>
    private readonly string[][]? _persistenceCookies;

    private static string[] CookiesOfServers(AppConfig config, bool secure) =>
        config.Servers.Select((_, i) => Persistence.SetCookieFor(config, i, secure)).ToArray();

    /// <summary>The Set-Cookie line that pins a client to a server; throws when the app's persistence is off.</summary>
    public string PersistenceCookie(int serverIndex, bool secure) =>
        (_persistenceCookies ?? throw new InvalidOperationException($"persistence is off for app '{Config.Name}'"))[secure ? 1 : 0][serverIndex];

    public AppConfig Config { get; }
    public ServerRuntime[] Servers { get; }

    /// <summary>Requests routed to the app, the ones no server could take, responses by class.</summary>
    public AppCounters Counters { get; }

    /// <summary>
    /// Which servers may take a new client now (health up, admin Ready: <see cref="Admin.UsableForNew"/>), less
    /// those already tried for this request. Balancing, redispatch and retries choose among these.
    /// </summary>
    public bool[] Usable(bool[]? tried = null)
    {
        var usable = new bool[Servers.Length];
        var anyFree = false;
        for (var i = 0; i < usable.Length; i++)
        {
            usable[i] = Servers[i].UsableForNew && (tried is null || !tried[i]);
            anyFree |= usable[i] && Servers[i].HasFreeSlot;
        }
        // New clients go to a server with a free slot; they queue on a full one only when all are full.
        if (anyFree)
            for (var i = 0; i < usable.Length; i++)
                usable[i] &= Servers[i].HasFreeSlot;
        return usable;
    }

    /// <summary>
    /// A server for a retry, among those not tried yet. It does not advance the round robin: a retry sees a
    /// different set of servers, and feeding that set to the round robin would reset it for every client.
    /// </summary>
    public int ChooseForRetry(bool[] usable) =>
        OrNone(Balancing.LeastConn(usable, _weights, ActiveCounts(), Interlocked.Increment(ref _turn)));

    /// <summary>
    /// Which servers keep a client their persistence cookie names (<see cref="Admin.UsableForPinned"/>): a
    /// draining server keeps its pinned clients until its deadline; MAINT and down servers keep none.
    /// </summary>
    public bool[] UsableForPinned(DateTimeOffset now)
    {
        var usable = new bool[Servers.Length];
        for (var i = 0; i < usable.Length; i++)
            usable[i] = Servers[i].UsableForPinned(now);
        return usable;
    }

    /// <summary>The next server by the app's algorithm among usable ones, or -1 when none is.</summary>
    public int Choose(bool[] usable) => Choose(usable, []);

    /// <summary>As <see cref="Choose(bool[])"/> for a request a rule pinned to <paramref name="pin"/> (server indexes; empty: none).</summary>
    public int Choose(bool[] usable, int[] pin) => Config.Balance switch
    {
        var b when b.IsLeastConn => OrNone(Balancing.LeastConn(usable, _weights, ActiveCounts(), Interlocked.Increment(ref _turn))),
        var b when b.IsRandomTwoChoices => OrNone(Balancing.RandomTwoChoices(usable, _weights, ActiveCounts(), Random.Shared.Next(), Random.Shared.Next())),
        _ when pin.Length == 0 => ChooseRoundRobin(ref _roundRobin, usable),
        _ => ChooseRoundRobin(ref _pinnedRoundRobins.GetOrAdd(string.Join(",", pin), _ => new StrongBox<RoundRobinState>(Balancing.RoundRobinInitial)).Value!, usable),
    };

    /// <summary>Smooth weighted round robin; its immutable state is swapped atomically, so no lock is held.</summary>
    private int ChooseRoundRobin(ref RoundRobinState state, bool[] usable)
    {
        while (true)
        {
            var current = Volatile.Read(ref state);
            var picked = Balancing.RoundRobin(current, usable, _weights);
            if (picked is null)
                return -1;
            var (index, next) = picked.Value;
            if (ReferenceEquals(Interlocked.CompareExchange(ref state, next, current), current))
                return index;
        }
    }

    private int[] ActiveCounts() => Servers.Select(s => s.Active).ToArray();

    private static int OrNone(Microsoft.FSharp.Core.FSharpOption<int>? choice) => choice is null ? -1 : choice.Value;
}
