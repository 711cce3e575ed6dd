using Yarp.ReverseProxy.Forwarder;

namespace Lb.Host.Caching;

/// <summary>
/// Wraps the forwarding transformer for cached apps: on the way out it replaces the client's validators with
/// the cache's when a stored response is being validated; on the way back, after the inner rewrites, it hands
/// the response to <see cref="HttpCache.OnResponse"/> (store it? a 304 refreshing an entry?). Requests of apps
/// without cache pass through untouched.
/// </summary>
public sealed class CachingTransformer(HttpTransformer inner, HttpCache cache) : HttpTransformer
{
    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest,
        string destinationPrefix, CancellationToken cancellationToken)
    {
        await inner.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
        if (HttpCache.ExchangeOf(httpContext) is { } exchange)
            cache.OnRequest(exchange, proxyRequest);
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse,
        CancellationToken cancellationToken)
    {
        var proceed = await inner.TransformResponseAsync(httpContext, proxyResponse, cancellationToken);
        return proxyResponse is not null && HttpCache.ExchangeOf(httpContext) is { } exchange
            ? cache.OnResponse(httpContext, exchange, proxyResponse, proceed)
            : proceed;
    }

    public override ValueTask TransformResponseTrailersAsync(HttpContext httpContext, HttpResponseMessage proxyResponse,
        CancellationToken cancellationToken) =>
        inner.TransformResponseTrailersAsync(httpContext, proxyResponse, cancellationToken);
}
