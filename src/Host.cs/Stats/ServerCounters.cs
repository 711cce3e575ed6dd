using System.Collections.Concurrent;
using Lb.Rules;

namespace Lb.Host.Stats;

/// <summary>
/// The counters of one server (HAProxy's per-server stats line): sessions, queue, bytes, responses by class,
/// persistence hits and redispatches, checks. Lock-free: every update is one Interlocked operation, so the
/// forwarding path never waits on stats.
/// </summary>
public sealed class ServerCounters(TimeSpan pinnedWindow)
{
    private long _sessionsTotal;
    private int _sessionsMax;
    private int _queue;
    private long _bytesIn;
    private long _bytesOut;
    private readonly long[] _responses = new long[6];
    private long _persistenceHits;
    private long _redispatches;
    private long _checksPassed;
    private long _checksFailed;
    private CheckResult? _lastCheck;

    /// <summary>Clients seen with this server's cookie lately (the page's "pinned").</summary>
    public RecentClients Pinned { get; } = new(pinnedWindow);

    public long SessionsTotal => Interlocked.Read(ref _sessionsTotal);
    public int SessionsMax => Volatile.Read(ref _sessionsMax);
    public int Queue => Volatile.Read(ref _queue);
    public long BytesIn => Interlocked.Read(ref _bytesIn);
    public long BytesOut => Interlocked.Read(ref _bytesOut);
    public long PersistenceHits => Interlocked.Read(ref _persistenceHits);
    public long Redispatches => Interlocked.Read(ref _redispatches);
    public long ChecksPassed => Interlocked.Read(ref _checksPassed);
    public long ChecksFailed => Interlocked.Read(ref _checksFailed);
    public CheckResult? LastCheck => Volatile.Read(ref _lastCheck);

    public long[] Responses()
    {
        var copy = new long[_responses.Length];
        for (var i = 0; i < copy.Length; i++)
            copy[i] = Interlocked.Read(ref _responses[i]);
        return copy;
    }

    public void QueueEntered() => Interlocked.Increment(ref _queue);
    public void QueueLeft() => Interlocked.Decrement(ref _queue);

    /// <summary>A request got a slot; <paramref name="activeNow"/> is the count including it.</summary>
    public void SessionStarted(int activeNow)
    {
        Interlocked.Increment(ref _sessionsTotal);
        var max = Volatile.Read(ref _sessionsMax);
        while (activeNow > max)
        {
            var seen = Interlocked.CompareExchange(ref _sessionsMax, activeNow, max);
            if (seen == max)
                break;
            max = seen;
        }
    }

    public void AddBytes(long received, long sent)
    {
        if (received > 0)
            Interlocked.Add(ref _bytesIn, received);
        if (sent > 0)
            Interlocked.Add(ref _bytesOut, sent);
    }

    /// <summary>Counts a status by class (<see cref="Lb.Rules.Stats.StatusClass"/>); 0 counts as "other".</summary>
    public void Response(int status) => Interlocked.Increment(ref _responses[Lb.Rules.Stats.StatusClass(status)]);

    public void PersistenceHit() => Interlocked.Increment(ref _persistenceHits);
    public void Redispatch() => Interlocked.Increment(ref _redispatches);

    public void Check(CheckResult result)
    {
        Interlocked.Increment(ref result.Passed ? ref _checksPassed : ref _checksFailed);
        Volatile.Write(ref _lastCheck, result);
    }
}

/// <summary>Requests routed to one app that no server could take, and the app's responses by class.</summary>
public sealed class AppCounters
{
    private long _requests;
    private long _noServer;
    private readonly long[] _responses = new long[6];

    public long Requests => Interlocked.Read(ref _requests);
    public long NoServer => Interlocked.Read(ref _noServer);

    public long[] Responses()
    {
        var copy = new long[_responses.Length];
        for (var i = 0; i < copy.Length; i++)
            copy[i] = Interlocked.Read(ref _responses[i]);
        return copy;
    }

    public void Request() => Interlocked.Increment(ref _requests);
    public void NoServerAvailable() => Interlocked.Increment(ref _noServer);
    public void Response(int status) => Interlocked.Increment(ref _responses[Lb.Rules.Stats.StatusClass(status)]);
}

/// <summary>
/// Distinct clients seen within a sliding window, in bounded memory: at most <see cref="Capacity"/> entries
/// (a 64-bit key of the client and its last-seen time). When full, entries older than the window are swept;
/// if none is, new clients are not added and the count reads as "at least Capacity".
/// </summary>
public sealed class RecentClients(TimeSpan window)
{
    public const int Capacity = 4096;

    private readonly ConcurrentDictionary<ulong, long> _lastSeen = new();
    private long _nextSweep;

    public TimeSpan Window { get; } = window;

    public void Seen(ulong client, DateTimeOffset now)
    {
        var ticks = now.UtcTicks;
        if (_lastSeen.Count >= Capacity && !_lastSeen.ContainsKey(client))
        {
            Sweep(ticks);
            if (_lastSeen.Count >= Capacity)
                return;
        }
        _lastSeen[client] = ticks;
        if (ticks >= Interlocked.Read(ref _nextSweep))
            Sweep(ticks);
    }

    /// <summary>Clients whose last request is within the window of <paramref name="now"/>.</summary>
    public int Count(DateTimeOffset now)
    {
        var since = now.UtcTicks - Window.Ticks;
        var count = 0;
        foreach (var (_, seen) in _lastSeen)
            if (seen > since)
                count++;
        return count;
    }

    private void Sweep(long now)
    {
        Interlocked.Exchange(ref _nextSweep, now + Window.Ticks);
        var since = now - Window.Ticks;
        foreach (var (key, seen) in _lastSeen)
            if (seen <= since)
                _lastSeen.TryRemove(new KeyValuePair<ulong, long>(key, seen));
    }

    /// <summary>
    /// A client's key: its address and User-Agent (clients behind one NAT differ by browser), as two 32-bit
    /// string hashes (randomised per process, so a client cannot aim for a collision).
    /// </summary>
    public static ulong KeyOf(string address, string userAgent) =>
        ((ulong)(uint)address.GetHashCode() << 32) | (uint)userAgent.GetHashCode();
}
