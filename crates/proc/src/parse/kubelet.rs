//! The names the kubelet gives its container logs: `/var/log/containers/` holds one entry
//! per container, `POD_NAMESPACE_CONTAINER-ID.log`, a link to the pod's log. It is the
//! host's own record of which pod and container a container id belongs to, readable without
//! the Kubernetes API or the container runtime's socket.

/// Which pod and container a container id belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodContainer {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// Reads `POD_NAMESPACE_CONTAINER-ID.log` (ID: 64 hex digits) as `(ID, PodContainer)`.
/// Pod, namespace and container names cannot hold `_` (Kubernetes names are DNS labels and
/// subdomains), so the split is unambiguous; anything else is `None`.
pub fn container_log_name(name: &str) -> Option<(String, PodContainer)> {
    let stem = name.strip_suffix(".log")?;
    let (names, id) = stem.rsplit_once('-')?;
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut parts = names.split('_');
    let (Some(pod), Some(namespace), Some(container), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let dns = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    if !(dns(pod) && dns(namespace) && dns(container)) {
        return None;
    }
    Some((
        id.to_ascii_lowercase(),
        PodContainer {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            container: container.to_string(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_log_names_give_pod_namespace_and_container() {
        let id = "89abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567";
        let (got, pc) =
            container_log_name(&format!("web-7d9c8f6b5-x2kqz_shop_app-{id}.log")).unwrap();
        assert_eq!(got, id);
        assert_eq!(
            pc,
            PodContainer {
                namespace: "shop".into(),
                pod: "web-7d9c8f6b5-x2kqz".into(),
                container: "app".into(),
            }
        );
        // Container names with dashes: the id is after the last one.
        let (_, pc) = container_log_name(&format!("db-0_data_pg-exporter-{id}.log")).unwrap();
        assert_eq!(pc.container, "pg-exporter");
        for bad in [
            format!("web_shop_app-{id}.txt"),
            format!("web_shop-{id}.log"),
            format!("a_b_c_d-{id}.log"),
            "web_shop_app-1234.log".to_string(),
            format!("Web_shop_app-{id}.log"),
            format!("web_sh\u{1b}p_app-{id}.log"),
            format!("_shop_app-{id}.log"),
        ] {
            assert_eq!(container_log_name(&bad), None, "{bad}");
        }
    }
}
