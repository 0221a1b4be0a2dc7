# The replicas behind Varnish, for deploy/compose.yaml (services bantin1..bantin3, port 8080).
# Included by bantin.vcl; one `backend` per replica, all in the `replicas` director.
# (Tests and bench/cdn.sh write their own file of this shape with 127.0.0.1 ports.)

backend bantin1 { .host = "bantin1"; .port = "8080"; .probe = bantin_ready; }
backend bantin2 { .host = "bantin2"; .port = "8080"; .probe = bantin_ready; }
backend bantin3 { .host = "bantin3"; .port = "8080"; .probe = bantin_ready; }

sub vcl_init {
    new replicas = directors.round_robin();
    replicas.add_backend(bantin1);
    replicas.add_backend(bantin2);
    replicas.add_backend(bantin3);
}
