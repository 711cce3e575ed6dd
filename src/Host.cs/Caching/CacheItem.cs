using Lb.Rules;

namespace Lb.Host.Caching;

/// <summary>What the stores hold under a key: a response with its body, or the Vary names of a target.</summary>
public abstract record CacheItem
{
    /// <summary>Bytes charged against a store's bound for this item under <paramref name="key"/>.</summary>
    public long SizeWith(string key) => Overhead + 2L * key.Length + PayloadBytes;

    /// <summary>Bookkeeping per entry (dictionary slot, list node, objects), so many tiny entries still count.</summary>
    private const long Overhead = 256;

    protected abstract long PayloadBytes { get; }
}

/// <summary>A stored response (<see cref="StoredResponse"/>: status, headers, request and response times) and its body.</summary>
public sealed record CachedResponse(StoredResponse Stored, byte[] Body) : CacheItem
{
    protected override long PayloadBytes =>
        Body.Length + Stored.Response.Headers.Sum(h => 2L * (h.Item1.Length + h.Item2.Length) + 32);
}

/// <summary>
/// Stored under the primary key of a target whose responses carry Vary: the names it nominates, so a lookup
/// can compute the variant key of the request at hand (<see cref="CachePolicy.VariantKey"/>).
/// </summary>
public sealed record CachedVariants(string[] Names) : CacheItem
{
    protected override long PayloadBytes => Names.Sum(n => 2L * n.Length + 16);
}
