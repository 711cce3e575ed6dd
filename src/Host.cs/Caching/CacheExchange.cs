using Lb.Rules;

namespace Lb.Host.Caching;

/// <summary>
/// One request of a cached app on its way through the cache: what it is (<see cref="Kind"/>), what the lookup
/// found, and what came back from the backend. Lives in <c>HttpContext.Items</c> for the transformer.
/// </summary>
public sealed class CacheExchange(CacheRequest request, CacheRequestKind kind)
{
    public CacheRequest Request { get; } = request;
    public CacheRequestKind Kind { get; } = kind;

    /// <summary>The request was answered from the cache (or with 504 for only-if-cached): nothing to forward.</summary>
    public bool Answered { get; set; }

    /// <summary>The stored response being validated, the key it was found under, and the conditional headers sent.</summary>
    public CachedResponse? Validating { get; set; }
    public string? ValidatingKey { get; set; }
    public Tuple<string, string>[] Conditionals { get; set; } = [];

    /// <summary>The stored response found for the request, stale or validated: it may answer instead of a backend
    /// error (<see cref="CachePolicy.StaleOnError"/>, RFC 5861 stale-if-error).</summary>
    public CachedResponse? Stale { get; set; }

    /// <summary>The backend failed and <see cref="Stale"/> answers: the client gets this, once the forward completes.</summary>
    public CachedResponse? ServeStale { get; set; }

    /// <summary>When the (last) attempt went to the backend: RFC 9111 §4.2.3 request_time.</summary>
    public DateTimeOffset SentAt { get; set; }

    /// <summary>A 304 refreshed <see cref="Validating"/>: the client gets this, once the forward completes.</summary>
    public CachedResponse? Refreshed { get; set; }

    /// <summary>The persistence cookie lb set on a validated response, to give the client with the stored one.</summary>
    public string? InsertedCookie { get; set; }

    /// <summary>A storable response on its way to the client, its body copied by <see cref="Capture"/>.</summary>
    public StoredResponse? Candidate { get; set; }
    public CaptureStream? Capture { get; set; }
}
