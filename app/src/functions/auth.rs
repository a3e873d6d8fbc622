use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::error::AppError;
use crate::models::CurrentUser;

/// Signs in; the session cookie comes with the response.
#[server(prefix = "/api/fn", endpoint = "login", input = Json)]
pub async fn login(username: String, password: String) -> Result<CurrentUser, AppError> {
    use crate::ssr::*;
    with_status(
        async {
            let (state, session, ip) = request_context().await?;
            sign_in(&state, &session, ip, &username, &password)
                .await
                .map(CurrentUser::from)
        }
        .await,
    )
}

/// Signs out (the session is deleted on the server).
#[server(prefix = "/api/fn", endpoint = "logout", input = Json)]
pub async fn logout() -> Result<(), AppError> {
    use crate::ssr::*;
    with_status(
        async {
            let (state, session, ip) = request_context().await?;
            sign_out(&state, &session, ip).await
        }
        .await,
    )
}

/// Who is signed in, if anyone. Open to everyone: it reveals nothing but the
/// caller's own account.
#[server(prefix = "/api/fn", endpoint = "whoami", input = Json)]
pub async fn whoami() -> Result<Option<CurrentUser>, AppError> {
    use crate::ssr::*;
    with_status(
        async {
            let (state, session, _) = request_context().await?;
            Ok(current_user(&state, &session).await?.map(CurrentUser::from))
        }
        .await,
    )
}
